/** JSON-lines logging on stderr (SPEC §13): one object per line, machine-greppable. */

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};
const encoder = new TextEncoder();

export class Logger {
  #min: number;
  constructor(readonly base: Record<string, unknown>, level: Level = "info") {
    this.#min = ORDER[level];
  }
  log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
    if (ORDER[level] < this.#min) return;
    const line = JSON.stringify({
      ts: Date.now(),
      level,
      msg,
      ...this.base,
      ...fields,
    });
    try {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // stderr closed: nothing sensible left to do with a log line
    }
  }
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log("error", msg, fields);
  }
}
