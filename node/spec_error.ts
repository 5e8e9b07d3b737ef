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
    super(
      message.replace(
        // deno-lint-ignore no-control-regex -- control characters are the point
        /[\x00-\x1f\x7f\u2028\u2029]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
      ),
    );
    this.name = "SpecError";
  }
}
