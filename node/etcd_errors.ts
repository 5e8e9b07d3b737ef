/** Endpoints, deadlines, and telling "etcd is unreachable" apart from other failures. */

/** The endpoint a node or CLI uses when nothing is configured. */
export const LOCAL_ENDPOINT = "http://127.0.0.1:2379";

/** Raised when etcd cannot be reached; CLI commands exit 3 with its message. */
export class EtcdUnreachableError extends Error {
  constructor(readonly endpoints: string[], readonly reason: string) {
    super(`etcd unreachable: ${endpoints.join(",")}: ${reason}`);
    this.name = "EtcdUnreachableError";
  }
}

/** Parses `BOI_ETCD_ENDPOINTS`-style lists ("a:2379,http://b:2379"). */
export function parseEndpoints(text: string): string[] {
  const list = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (list.length === 0) {
    throw new Error(
      `etcd endpoints must be a comma-separated list like "http://127.0.0.1:2379": got ${
        JSON.stringify(text)
      }`,
    );
  }
  return list.map((e) => {
    const url = e.includes("://") ? e : `http://${e}`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(
        `etcd endpoint must look like "http://127.0.0.1:2379": got ${
          JSON.stringify(e)
        }`,
      );
    }
    if (!parsed.port) {
      throw new Error(
        `etcd endpoint must name a port, like "127.0.0.1:2379": got ${
          JSON.stringify(e)
        }`,
      );
    }
    return `${parsed.protocol}//${parsed.host}`;
  });
}

/**
 * Raised by the node's own waits on an etcd reply (a keepalive that gets no
 * answer): the same "no answer" as a grpc deadline, for `isUnreachable`.
 */
export class EtcdNoAnswerError extends Error {
  constructor(what: string, ms: number) {
    super(`etcd: no answer to ${what} within ${Math.round(ms)} ms`);
    this.name = "EtcdNoAnswerError";
  }
}

/**
 * etcd3@1.1.2's classes for grpc status 14 UNAVAILABLE and 4
 * DEADLINE_EXCEEDED (etcd's own "request timed out", "no leader" and "leader
 * changed" are status 14). Matched by name, not imported: loading etcd3 costs
 * ~150 ms that CLI paths without etcd skip; etcd_errors_test.ts checks these
 * names against what a real etcd gives.
 */
const NO_ANSWER_CLASSES = new Set([
  "GRPCUnavailableError",
  "GRPCDeadlineExceededError",
]);
/** The same as a raw grpc-js status code, or as a socket's error code. */
const NO_ANSWER_CODES = new Set<unknown>([
  14,
  4,
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);
/**
 * grpc-js's words for a call that got no answer, read on etcd3's own classes
 * only: e.g. "13 INTERNAL: Received RST_STREAM with code 2 triggered by
 * internal client error: write EPIPE" when etcd stops under a stream.
 */
const NO_ANSWER_TEXT =
  /Unavailable|DeadlineExceeded|deadline|ECONNREFUSED|ECONNRESET|EPIPE|RST_STREAM|No connection|connect|UNAVAILABLE|timed out/i;

/**
 * True for errors that mean "no answer from etcd" rather than "etcd said no".
 * Decided by the error's class or status code, never by the text of an error
 * of ours: those can quote a user's string (a node id "connect-1").
 */
export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (
    err instanceof EtcdUnreachableError || err instanceof EtcdNoAnswerError ||
    err instanceof Deno.errors.ConnectionRefused ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.TimedOut
  ) return true;
  const cls = err.constructor.name;
  if (NO_ANSWER_CLASSES.has(cls)) return true;
  // cockatiel's open breaker: the host failed three calls in a row.
  if ((err as { isBrokenCircuitError?: unknown }).isBrokenCircuitError) {
    return true;
  }
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) return NO_ANSWER_CODES.has(code);
  // A status etcd3 casts to its generic class (GRPCGenericError and kin).
  return cls.startsWith("GRPC") && NO_ANSWER_TEXT.test(err.message);
}

/** Short human reason for an unreachable error (first line, no stack). */
export function unreachableReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split("\n")[0].slice(0, 200);
}

/** A grpc deadline `ms` from now, for calls that must not hang. */
export function deadline(ms: number): { deadline: Date } {
  return { deadline: new Date(Date.now() + ms) };
}
