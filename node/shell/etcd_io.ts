/** The node's etcd I/O: transactions from effects, consistent paged lists, and the prefix watch. */
import { Buffer } from "node:buffer";
import type { Etcd3, IKeyValue } from "etcd3";
import type { Compare, Op } from "../core/effects.ts";
import type { KeyChange } from "../core/events.ts";
import { openPrefixWatch, type PrefixWatch } from "./watch_stream.ts";
import { kvTxn } from "./kv_txn.ts";
import { encodeNestedTxns, encodeTxn, type TxnReply } from "./txn_codec.ts";

const b = (s: string) => Buffer.from(s);

/** The range end that covers every key starting with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const buf = Buffer.from(prefix);
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i] < 0xff) {
      const end = Buffer.from(buf.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** The failure branch's reads as changes; an absent key is a delete at `revision`. */
function readsOf(
  readKeys: readonly string[],
  reply: TxnReply | null,
  revision: number,
): KeyChange[] {
  return readKeys.map((key, i) => {
    const r = reply?.responses[i];
    const kv = Array.isArray(r) ? r[0] : undefined;
    return kv ?? { key, revision, kv: null };
  });
}

/** Outcome of one transaction; `reads` (current records of `readKeys`) only when the compare failed. */
export interface TxnOutcome {
  ok: boolean;
  revision: number;
  reads?: KeyChange[];
}

/** Runs one compare-guarded transaction; returns whether it committed and at which revision. */
export async function runTxn(
  client: Etcd3,
  compare: Compare[],
  success: Op[],
  timeoutMs = 5000,
  readKeys: string[] = [],
): Promise<TxnOutcome> {
  const res = await kvTxn(
    client,
    encodeTxn({ compare, success, readKeys }),
    timeoutMs,
  );
  if (res.succeeded) return { ok: true, revision: res.revision };
  return {
    ok: false,
    revision: res.revision,
    reads: readsOf(readKeys, res, res.revision),
  };
}

/**
 * Runs several compare-guarded transactions as nested transactions of one
 * request: one revision, one round trip, and each still commits or fails on
 * its own compares. The outer transaction has no compare of its own, so it
 * always applies its (guarded) children. Keys must not repeat across them.
 */
export async function runTxns(
  client: Etcd3,
  txns: { compare: Compare[]; success: Op[]; readKeys?: string[] }[],
  timeoutMs = 5000,
): Promise<TxnOutcome[]> {
  const res = await kvTxn(client, encodeNestedTxns(txns), timeoutMs);
  const revision = res.revision;
  return txns.map((t, i) => {
    const r = res.responses[i];
    const nested = r !== null && r !== undefined && !Array.isArray(r)
      ? r
      : null;
    if (nested?.succeeded === true) return { ok: true, revision };
    return {
      ok: false,
      revision,
      reads: readsOf(t.readKeys ?? [], nested, revision),
    };
  });
}

export function toChange(kv: IKeyValue, deleted: boolean): KeyChange {
  const revision = Number(kv.mod_revision);
  return {
    key: kv.key.toString(),
    revision,
    kv: deleted ? null : {
      value: kv.value.toString(),
      mod_revision: revision,
      create_revision: Number(kv.create_revision),
      lease: String(kv.lease ?? "0"),
    },
  };
}

/** Lists every key under `prefix` at one revision, 1000 keys a page. */
export async function listPrefix(
  client: Etcd3,
  prefix: string,
  timeoutMs = 10_000,
): Promise<{ revision: number; kvs: KeyChange[] }> {
  const end = prefixEnd(prefix);
  let key = b(prefix);
  let revision = 0;
  const kvs: KeyChange[] = [];
  for (;;) {
    const res = await client.kv.range({
      key,
      range_end: end,
      limit: 1000,
      revision: revision || undefined,
    }, { deadline: new Date(Date.now() + timeoutMs) });
    if (!revision) revision = Number(res.header.revision);
    for (const kv of res.kvs) kvs.push(toChange(kv, false));
    if (!res.more || res.kvs.length === 0) break;
    key = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
  }
  return { revision, kvs };
}

/**
 * Watches `prefix` from `fromRevision`, calling back with each response's
 * changes in order; `onError` when etcd cancels the watch (e.g. compacted),
 * after which the caller re-lists. A broken stream is resumed inside
 * (watch_stream.ts), decoded by hand (watch_codec.ts).
 */
export function watchPrefix(
  client: Etcd3,
  prefix: string,
  fromRevision: number,
  onChanges: (changes: KeyChange[]) => void,
  onError: (err: Error) => void,
): Promise<PrefixWatch> {
  return openPrefixWatch(
    client,
    b(prefix),
    prefixEnd(prefix),
    fromRevision,
    onChanges,
    onError,
  );
}
