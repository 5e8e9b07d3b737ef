/** Exit codes and the error type that carries one. */

/** Exit codes of SPEC §11. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  unreachable: 3,
} as const;

/** An error the CLI reports as one line on stderr and turns into an exit code. */
export class CliError extends Error {
  constructor(message: string, readonly code: number = EXIT.failed) {
    super(message);
    this.name = "CliError";
  }
}
