import { printable } from "./printable.ts";

/** A refused spec; `message` is one line naming the file, the path and the rule. */
export class SpecError extends Error {
  constructor(
    message: string,
    /** The file name as given to `parseSpec`. */
    readonly file: string,
    /** Path inside the document (`tasks[2].timeout`), "" for the whole file. */
    readonly path: string,
  ) {
    // One printable line, whatever the input held.
    super(printable(message));
    this.name = "SpecError";
  }
}
