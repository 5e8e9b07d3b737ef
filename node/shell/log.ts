/** JSON-lines logging on stderr (SPEC §13): one object per line, machine-greppable. */

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};
const encoder = new TextEncoder();
let pending: string[] = [];
let pendingChars = 0;
let scheduled = false;

/** Writes buffered lines now (also called on shutdown). */
export function flushLogs(): void {
  scheduled = false;
  if (pending.length === 0) return;
  const data = encoder.encode(pending.join("\n") + "\n");
  pending = [];
  pendingChars = 0;
  try {
    for (let off = 0; off < data.length;) {
      off += Deno.stderr.writeSync(data.subarray(off));
    }
  } catch {
    // stderr closed: nothing sensible left to do with a log line
  }
}
globalThis.addEventListener("unload", flushLogs);

/**
 * Info and debug lines are buffered and written once per event-loop turn (one
 * syscall for many lines: per-task lines were a measurable share of a busy
 * node's CPU); warn and error lines flush at once, so a crash right after
 * one still leaves it on stderr.
 */
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
    pending.push(line);
    pendingChars += line.length;
    if (ORDER[level] >= ORDER.warn || pendingChars > 64 * 1024) flushLogs();
    else if (!scheduled) {
      scheduled = true;
      setTimeout(flushLogs, 0);
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
