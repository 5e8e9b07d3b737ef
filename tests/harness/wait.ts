/** Waiting on conditions with a deadline, never sleeping and hoping. */

/** Options of {@linkcode waitFor}. */
export interface WaitOptions {
  /**
   * Give up after this long.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Pause between two checks.
   * @default 100
   */
  intervalMs?: number;
}

/** Thrown by {@linkcode waitFor} on timeout; carries what was awaited and the last value seen. */
export class WaitTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly lastSeen: unknown,
    readonly checks: number,
  ) {
    super(
      `timed out after ${timeoutMs} ms waiting for ${what} (${checks} checks); last seen: ${
        describe(lastSeen)
      }`,
    );
    this.name = "WaitTimeoutError";
  }
}

/** A "not yet" answer that also says what was seen; see {@linkcode notYet}. */
export class NotYet {
  constructor(readonly seen: unknown) {}
  [Symbol.for("Deno.customInspect")](): string {
    return describe(this.seen);
  }
}

/**
 * Returned from a `waitFor` check: keep waiting, and report `seen` as the
 * last value if the wait times out.
 */
export function notYet(seen: unknown): NotYet {
  return new NotYet(seen);
}

/**
 * Thrown from a `waitFor` check when waiting is pointless (the process died):
 * `waitFor` rethrows it at once instead of retrying.
 */
export class StopWaiting extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StopWaiting";
  }
}

/** Marks a check that threw: the error is remembered as the last value seen. */
class Threw {
  constructor(readonly error: unknown) {}
  [Symbol.for("Deno.customInspect")](): string {
    const e = this.error;
    return `error: ${
      e instanceof Error ? `${e.name}: ${e.message}` : String(e)
    }`;
  }
}

/** Renders a value for error messages: compact, bounded. */
export function describe(value: unknown, maxChars = 4000): string {
  const text = typeof value === "string" ? JSON.stringify(value) : Deno.inspect(
    value,
    { depth: 6, colors: false, iterableLimit: 50, strAbbreviateSize: 500 },
  );
  return text.length > maxChars
    ? `${text.slice(0, maxChars)}… (${text.length} chars)`
    : text;
}

type Falsy = undefined | null | false | NotYet;

/**
 * Calls `fn` until it returns a truthy value and resolves with it. A check
 * that throws, or returns `notYet(seen)`, counts as "not yet" (so waiting
 * across an etcd restart works), except a {@linkcode StopWaiting} error;
 * on timeout the error names `what` and the last value (or error) seen.
 * A check that hangs past the deadline does not delay the timeout.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | Falsy> | T | Falsy,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = "(no check completed)";
  let checks = 0;
  while (true) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new WaitTimeoutError(what, timeoutMs, last, checks);
    }
    const outcome = await withTimer(
      (async () => {
        try {
          return { value: await fn() };
        } catch (error) {
          if (error instanceof StopWaiting) throw error;
          return { value: new Threw(error) };
        }
      })(),
      remaining,
    );
    if (outcome === TIMER) {
      throw new WaitTimeoutError(
        what,
        timeoutMs,
        `(a check was still running at the deadline; before it: ${
          describe(last)
        })`,
        checks,
      );
    }
    checks += 1;
    const value = outcome.value;
    if (value && !(value instanceof Threw) && !(value instanceof NotYet)) {
      return value as T;
    }
    last = value;
    const pause = Math.min(intervalMs, deadline - Date.now());
    if (pause > 0) await delay(pause);
  }
}

const TIMER = Symbol("timer");

/** Races `p` against a timer that is always cleared (no leaked timers in tests). */
async function withTimer<T>(
  p: Promise<T>,
  ms: number,
): Promise<T | typeof TIMER> {
  let id: ReturnType<typeof setTimeout> | undefined;
  const timer = new Promise<typeof TIMER>((resolve) => {
    id = setTimeout(() => resolve(TIMER), ms);
  });
  try {
    return await Promise.race([p, timer]);
  } finally {
    clearTimeout(id);
  }
}

/**
 * Rejects with an error naming `what` if `p` does not settle within `ms`.
 * For single operations that must not hang a test (a process exit, an RPC).
 */
export async function within<T>(
  what: string,
  p: Promise<T>,
  ms: number,
): Promise<T> {
  const r = await withTimer(p, ms);
  if (r === TIMER) throw new Error(`timed out after ${ms} ms: ${what}`);
  return r;
}

/** True if `p` settles within `ms` (its outcome is ignored); the timer is always cleared. */
export async function settlesWithin(
  p: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  return (await withTimer(p.then(() => true, () => true), ms)) !== TIMER;
}

/** A plain pause, for polling intervals only: never as a way to wait for a condition. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
