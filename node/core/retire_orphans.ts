/**
 * Envelopes whose spec record never came: a dispatch writes its envelopes
 * first and its record last, so a dispatcher killed between its
 * transactions (its take-back never ran) leaves tasks no node may claim
 * and nothing else would delete. The retention pass deletes them once this
 * node has seen the spec id without a record for `orphan_grace_ms` (its own
 * clock: the envelopes' `dispatched_at` is the dispatcher's, which may be
 * off), each by compare: the envelope as seen, no claim, no record, and no
 * marker of a dispatch under way (`cluster/dispatching/{spec_id}`, bound to
 * the dispatcher's lease: cli/dispatch_write.ts). So a dispatch still
 * writing is never cut, however slow; the grace covers a dispatcher without
 * the marker (one before it). Pure: the view and the time in, effects out.
 */
import type { Envelope } from "../schema.ts";
import type { Keys } from "../keys.ts";
import type { Effect, TxnEffect } from "./effects.ts";
import type { KeyChange } from "./events.ts";
import { hrwWinner } from "./hrw.ts";
import { envelopeDelete } from "./retire.ts";
import type { MutableView, NodeView, Versioned } from "./view.ts";

/** Default of `CoreConfig.orphan_grace_ms`: 1 hour. */
export const ORPHAN_GRACE_MS = 3600 * 1000;

/**
 * Reducer, on a retention pass: when this node first saw each spec id that
 * has envelopes and no record; a spec id whose record came, or whose
 * envelopes went, is forgotten.
 */
export function noteOrphans(view: MutableView, at: number): void {
  for (const specId of view.orphans_seen.keys()) {
    if (view.specs.has(specId) || !view.spec_tasks.get(specId)?.size) {
      view.orphans_seen.delete(specId);
    }
  }
  for (const [specId, ids] of view.spec_tasks) {
    if (ids.size > 0 && !view.specs.has(specId)) {
      if (!view.orphans_seen.has(specId)) view.orphans_seen.set(specId, at);
    }
  }
  for (const id of view.orphans_refused.keys()) {
    if (!view.tasks.has(id)) view.orphans_refused.delete(id);
  }
}

/** The deletes of orphan envelopes whose grace is over, of spec ids this node is HRW pick of. */
export function decideOrphans(
  view: NodeView,
  keys: Keys,
  at: number,
  budget: number,
  members: readonly string[],
): Effect[] {
  const grace = view.config.orphan_grace_ms ?? ORPHAN_GRACE_MS;
  const out: Effect[] = [];
  for (const [specId, seen] of view.orphans_seen) {
    if (budget <= 0) break;
    if (seen + grace > at || view.specs.has(specId)) continue;
    if (view.dispatching.has(specId)) continue; // still being written
    if (hrwWinner(specId, members) !== view.config.node_id) continue;
    let n = 0;
    for (const id of view.spec_tasks.get(specId) ?? []) {
      if (budget <= 0) break;
      const t = view.tasks.get(id);
      if (t === undefined || view.inflight.has(id)) continue;
      if (view.orphans_refused.get(id) === t.mod_revision) continue;
      out.push(orphanDelete(keys, t));
      budget--;
      n++;
    }
    if (n > 0) {
      out.push({
        kind: "log",
        level: "warn",
        msg: "retiring orphan envelopes: their spec record was never written",
        fields: { spec_id: specId, tasks: n, seen_without_record_since: seen },
      });
    }
  }
  return out;
}

function orphanDelete(keys: Keys, t: Versioned<Envelope>): TxnEffect {
  const del = envelopeDelete(keys, t);
  const spec = t.value.spec_id;
  return {
    ...del,
    compare: [
      ...del.compare,
      { key: keys.spec(spec), target: "version", equals: 0 },
      // No dispatch of this spec id under way (its marker lives as long as
      // its dispatcher's lease): a slow one, or one that reuses the id.
      { key: keys.dispatching(spec), target: "version", equals: 0 },
    ],
  };
}

/**
 * Reducer, on a failed orphan delete: when the read-back shows a spec record
 * this view does not hold (invalid), the same compare would fail on every
 * pass, so it is not sent again while the envelope stays as compared. Any
 * other failure (a claim, a changed envelope) is decided again.
 */
export function noteOrphanRefused(
  view: MutableView,
  keys: Keys,
  effect: TxnEffect,
  reads: readonly KeyChange[],
): void {
  if (effect.reason !== "retire") return;
  const spec = effect.compare.find((c) =>
    c.target === "version" && c.equals === 0 &&
    c.key.startsWith(keys.dir("specs"))
  );
  const env = effect.compare[0];
  if (spec === undefined || env?.target !== "mod") return;
  const record = reads.find((r) => r.key === spec.key);
  if (record?.kv && !view.specs.has(effect.task_id.split(".")[0])) {
    view.orphans_refused.set(effect.task_id, env.equals);
  }
}
