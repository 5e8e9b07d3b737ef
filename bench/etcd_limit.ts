/**
 * W: the etcd write limit the control plane is measured against — concurrent
 * create-if-absent transactions per second, from Deno, with the node's own
 * client library, against the same etcd.
 */
import { Buffer } from "node:buffer";
import type { Etcd3 } from "etcd3";

/** Options of {@linkcode etcdLimit}. */
export interface EtcdLimitOptions {
  /** @default 2000 */
  durationMs?: number;
  /** Transactions in flight at once. @default 64 */
  concurrency?: number;
  /** Keys go under this prefix and are deleted afterwards. @default "/bench-w/" */
  prefix?: string;
}

/** Runs `concurrency` loops of one-key create-if-absent txns for `durationMs`; returns txns/s. */
export async function etcdLimit(
  client: Etcd3,
  opts: EtcdLimitOptions = {},
): Promise<{ txn_per_s: number; txns: number; concurrency: number }> {
  const durationMs = opts.durationMs ?? 2000;
  const concurrency = opts.concurrency ?? 64;
  const prefix = opts.prefix ?? "/bench-w/";
  let n = 0;
  let done = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const key = Buffer.from(`${prefix}${n++}`);
      const res = await client.kv.txn({
        compare: [{ key, target: "Version", result: "Equal", version: "0" }],
        success: [{ request_put: { key, value: Buffer.from("x") } }],
        failure: [],
      });
      if (!res.succeeded) throw new Error(`bench: ${key} existed already`);
      done++;
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  await client.delete().prefix(prefix);
  return { txn_per_s: done / seconds, txns: done, concurrency };
}
