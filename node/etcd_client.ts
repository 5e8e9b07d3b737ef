/** Connecting to etcd and telling "etcd is unreachable" apart from other failures. */
import { Etcd3, type IOptions } from "etcd3";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  handleAll,
  handleWhen,
  noop,
  retry,
} from "cockatiel";

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

export interface ConnectOptions {
  /**
   * Fail at once instead of retrying: the CLI must answer "etcd unreachable"
   * within a couple of seconds, a node rides out outages.
   * @default false
   */
  failFast?: boolean;
  /** @default 1500 (failFast) or 5000 */
  dialTimeoutMs?: number;
}

/** Creates a client; no I/O happens until the first call. */
export function connectEtcd(
  endpoints: string[],
  options: ConnectOptions = {},
): Etcd3 {
  const failFast = options.failFast ?? false;
  const opts: IOptions = {
    hosts: endpoints,
    dialTimeout: options.dialTimeoutMs ?? (failFast ? 1500 : 5000),
    faultHandling: failFast ? { host: () => noop, global: noop } : {
      // The library's default breaker holds a host "open" for 5 s after three
      // failures, which would add 5 s to every recovery after an etcd restart.
      host: () =>
        circuitBreaker(handleAll, {
          halfOpenAfter: 300,
          breaker: new ConsecutiveBreaker(3),
        }),
      // With several members, a call that hits a dead one is retried on
      // another (the pool picks among hosts whose breaker is closed).
      global: endpoints.length > 1
        ? retry(handleWhen((e) => isUnreachable(e)), {
          maxAttempts: endpoints.length,
        })
        : noop,
    },
    grpcOptions: {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    },
  };
  return new Etcd3(opts);
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
