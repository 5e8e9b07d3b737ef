/**
 * Structured plugin logs: JSON lines on stderr, which the supervisor reads and
 * merges into the node's log. Every line of a call carries its `corr_id`.
 * @module
 */

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};
const encoder = new TextEncoder();

/** Parses a level name, falling back to `info`. */
export function parseLevel(s: string | undefined): LogLevel {
  return s !== undefined && s in ORDER ? s as LogLevel : "info";
}

/** Writes one JSON object per line to stderr; `child` adds fields (e.g. `corr_id`). */
export class PluginLogger {
  constructor(
    readonly fields: Record<string, unknown> = {},
    readonly level: LogLevel = "info",
  ) {}

  /** A logger whose lines also carry `fields`. */
  child(fields: Record<string, unknown>): PluginLogger {
    return new PluginLogger({ ...this.fields, ...fields }, this.level);
  }

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}) {
    if (ORDER[level] < ORDER[this.level]) return;
    const line = JSON.stringify({
      ts: Date.now(),
      level,
      msg,
      ...this.fields,
      ...fields,
    });
    try {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // stderr closed: the core is gone and stdin EOF will end us
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
