/**
 * Connecting to etcd. Kept apart from `etcd_errors.ts` because loading the
 * etcd3 library costs ~150 ms: CLI paths that never dial etcd skip it.
 */
import { Buffer } from "node:buffer";
import { Etcd3, type IOptions } from "etcd3";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  handleAll,
  handleWhen,
  noop,
  retry,
} from "cockatiel";
import { isUnreachable } from "./etcd_errors.ts";

export interface ConnectOptions {
  /**
   * Fail at once instead of retrying: the CLI must answer "etcd unreachable"
   * within a couple of seconds, a node rides out outages.
   * @default false
   */
  failFast?: boolean;
  /** @default 1500 (failFast) or 5000 */
  dialTimeoutMs?: number;
  /**
   * PEM texts for etcd with client-certificate auth (`https://` endpoints,
   * given by host name: grpc-js refuses IP addresses as TLS targets).
   * @default none: plain connections
   */
  tls?: EtcdTls;
}

/** The CA to verify etcd with, and the client certificate and key to show it. */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
}

/** Creates a client; no I/O happens until the first call. */
export function connectEtcd(
  endpoints: string[],
  options: ConnectOptions = {},
): Etcd3 {
  const failFast = options.failFast ?? false;
  // node:tls would load NODE_EXTRA_CA_CERTS, which needs all of --allow-sys;
  // etcd is verified against the cluster CA alone.
  if (options.tls) Deno.env.delete("NODE_EXTRA_CA_CERTS");
  const opts: IOptions = {
    hosts: endpoints,
    dialTimeout: options.dialTimeoutMs ?? (failFast ? 1500 : 5000),
    faultHandling: failFast ? failFastPolicy(endpoints.length) : {
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
    // grpc-js wants Buffers here, not Uint8Arrays.
    ...(options.tls
      ? {
        credentials: {
          rootCertificate: Buffer.from(options.tls.ca),
          certChain: Buffer.from(options.tls.cert),
          privateKey: Buffer.from(options.tls.key),
        },
      }
      : {}),
    grpcOptions: {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    },
  };
  return new Etcd3(opts);
}

/**
 * The CLI's: one try per member, each member given up on at its first
 * failure to answer (for a minute: a CLI run is short), so a dead member of
 * three costs a refused connection, not the command. One member: no retry,
 * its own error.
 */
function failFastPolicy(members: number): IOptions["faultHandling"] {
  if (members <= 1) return { host: () => noop, global: noop };
  return {
    host: () =>
      circuitBreaker(handleWhen((e) => isUnreachable(e)), {
        halfOpenAfter: 60_000,
        breaker: new ConsecutiveBreaker(1),
      }),
    // Retries, not tries: each failure opens its member's breaker, so the
    // last try reaches the last member and its own error is the one told.
    global: retry(handleWhen((e) => isUnreachable(e)), {
      maxAttempts: members - 1,
    }),
  };
}
