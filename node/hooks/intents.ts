/**
 * Resolving an audit intent against etcd (see wal_state.Intent): did the
 * transaction it announced commit? The transaction compared the envelope's
 * mod revision with `after_rev`, so if it committed, its put was the first
 * change of the key after `after_rev`: watch the key from `after_rev + 1` and
 * look at the first change.
 * @module
 */
import { Buffer } from "node:buffer";
import type { Etcd3 } from "etcd3";
import { type PrefixWatch, WatchCancelled } from "../shell/watch_stream.ts";
import { deadline } from "../etcd_errors.ts";
import { watchPrefix } from "../shell/etcd_io.ts";
import type { EmitEffect, TxnEffect } from "../core/effects.ts";
import { committedEvents } from "../core/hook_events.ts";
import type { Keys } from "../keys.ts";
import { writtenKey } from "./wal_intents.ts";
import type { NodeHooks } from "./mod.ts";
import type { Intent } from "./wal_state.ts";

/**
 * The revision the intent's transaction committed at, or null if it did not
 * or cannot be known any more (`how` starts with "unknown": history
 * compacted). Throws when etcd did not answer in time.
 */
export async function intentOutcome(
  client: Etcd3,
  i: Intent,
  timeoutMs = 5000,
): Promise<{ committed_at: number | null; how: string }> {
  const cur = await client.kv.range(
    { key: Buffer.from(i.key) },
    deadline(timeoutMs),
  );
  const kv = cur.kvs[0];
  if (kv && Number(kv.mod_revision) <= i.after_rev) {
    return { committed_at: null, how: "unchanged since the compare" };
  }
  const first = Promise.withResolvers<
    { value: string | null; revision: number } | Error
  >();
  let w: PrefixWatch | null = null;
  const t = setTimeout(
    () => first.resolve(new Error("watch timed out")),
    timeoutMs,
  );
  try {
    w = await watchPrefix(client, i.key, i.after_rev + 1, (changes) => {
      const c = changes.find((c) => c.key === i.key);
      if (c) {
        first.resolve({ value: c.kv?.value ?? null, revision: c.revision });
      }
    }, (err) => first.resolve(err));
    const r = await first.promise;
    if (!(r instanceof Error)) {
      return r.value === i.value
        ? { committed_at: r.revision, how: "first change after the compare" }
        : { committed_at: null, how: "someone else changed it first" };
    }
    // Not an answer (etcd slow, the stream broke): the caller asks again.
    if (!(r instanceof WatchCancelled)) throw r;
    // Compacted history: only the current value can still tell.
    if (kv && kv.value.toString() === i.value) {
      return {
        committed_at: Number(kv.mod_revision),
        how: "current value (history compacted)",
      };
    }
    return { committed_at: null, how: `unknown (${r.message})` };
  } finally {
    clearTimeout(t);
    await w?.cancel().catch(() => {});
  }
}

/**
 * The events of an intent's committed transaction that are not written
 * yet: a crash may have come between the appends of one commit's events.
 * Less the kinds this process already wrote (`emitted`) and those the WAL
 * held at start (`written`, wal_intents.ts).
 */
export function missingEvents(
  keys: Keys,
  i: Intent,
  committedAt: number,
  emitted?: ReadonlySet<string>,
): EmitEffect[] {
  const effect: TxnEffect = {
    kind: "txn",
    reason: i.reason as TxnEffect["reason"],
    task_id: i.task_id,
    from_state: i.from_state as TxnEffect["from_state"],
    compare: [],
    success: [{ op: "put", key: i.key, value: i.value }],
  };
  return committedEvents(keys, effect, committedAt).filter((ev) =>
    !emitted?.has(ev.event) &&
    !i.written?.has(writtenKey(ev.event, ev.payload))
  );
}

/**
 * Runs one of the node's transactions between `prepare` and `settle` (a
 * no-op without a hooks plugin): the intent is on disk before it leaves,
 * and its answer — committed, failed or none — is recorded.
 */
export async function guardTxn<R extends { ok: boolean }>(
  hooks: NodeHooks | null,
  e: TxnEffect,
  run: () => Promise<R>,
): Promise<R> {
  const token = hooks?.prepare(e) ?? null;
  try {
    if (token !== null) await hooks!.intentsDurable(); // before it leaves
    const res = await run();
    hooks?.settle(token, res.ok ? "committed" : "failed");
    return res;
  } catch (err) {
    hooks?.settle(token, "unknown");
    throw err;
  }
}
