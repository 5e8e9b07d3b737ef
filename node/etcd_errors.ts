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

/** True for errors that mean "could not talk to etcd" rather than "etcd said no". */
export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const text = `${err.name} ${err.message}`;
  return /Unavailable|DeadlineExceeded|deadline|ECONNREFUSED|No connection|BrokenCircuit|circuit|connect|UNAVAILABLE|14 |timed out/i
    .test(text);
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
