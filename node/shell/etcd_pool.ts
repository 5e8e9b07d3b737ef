/**
 * The etcd3 client's connection pool (etcd3@1.1.2, `Namespace.pool`), which
 * the node's hand codecs go through (watch_stream.ts, kv_txn.ts): the same
 * channels, TLS credentials, auth metadata, host circuit breakers and global
 * retry as the library's own calls. It is a private field of the library;
 * the pin in deno.json and these modules' tests against a real etcd guard it.
 * @module
 */
import type { Etcd3 } from "etcd3";

/** The parts of the pool the node uses. */
export interface EtcdPool {
  /** Runs `fn` with a host's grpc-js client of `service`, under that host's breaker. */
  withConnection<T>(
    service: "KV" | "Watch",
    fn: (c: { resource: unknown; client: unknown; metadata: unknown }) => T,
  ): Promise<Awaited<T>>;
  /** Marks a host failed after a broken stream, as the library's streams do. */
  markFailed(resource: unknown, error: Error): void;
  /** The client's global retry policy (etcd_client.ts's `faultHandling.global`). */
  globalPolicy: { execute<T>(fn: () => Promise<T>): Promise<T> };
}

/** The client's pool; throws, naming the pin, if etcd3's internals changed. */
export function etcdPool(client: Etcd3): EtcdPool {
  const pool = (client as unknown as { pool?: EtcdPool }).pool;
  if (
    typeof pool?.withConnection !== "function" ||
    typeof pool.markFailed !== "function" ||
    typeof pool.globalPolicy?.execute !== "function"
  ) {
    throw new Error(
      "etcd: the etcd3 client has no connection pool (etcd3's internals changed: pin etcd3@1.1.2)",
    );
  }
  return pool;
}
