/**
 * Retention of finished specs in etcd: a spec whose tasks have all ended is
 * deleted, envelopes first and then its record, once its last task ended
 * `spec_retention_ms` ago. Without it every task ever dispatched stays in
 * etcd and in every node's view (its memory, its relist) forever. Decided by
 * one node per spec, the first in HRW order of the spec id over the live
 * nodes (as a task's monitor is), every `retireEvery` on a tick; each delete
 * compares the record's mod revision as seen, so a record that changed
 * (a spec re-dispatched under the same id, a hand edit) is left alone and
 * decided again. Envelopes whose spec record never came go in the same pass
 * (retire_orphans.ts). Pure: the view and the time in, effects out.
 */
import { type Envelope, TERMINAL_STATES } from "../schema.ts";
import type { Keys } from "../keys.ts";
import { liveMembers } from "./decide_context.ts";
import type { Effect, TxnEffect } from "./effects.ts";
import { hrwWinner } from "./hrw.ts";
import type { NodeView, Versioned } from "./view.ts";
import { decideOrphans } from "./retire_orphans.ts";

/** Default of `CoreConfig.spec_retention_ms`: 7 days, as the task logs' retention. */
export const SPEC_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** Most envelope deletes one pass sends: a pass never floods etcd or the batcher. */
const RETIRE_BATCH = 512;

/** How often a tick looks for specs to retire: every minute, sooner for a short retention. */
export function retireEvery(retentionMs: number): number {
  return Math.min(60_000, Math.max(1000, Math.floor(retentionMs / 2)));
}

/** The retention pass of one tick: deletes of finished specs this node monitors. */
export function decideRetire(view: NodeView, keys: Keys, at: number): Effect[] {
  const retention = view.config.spec_retention_ms ?? SPEC_RETENTION_MS;
  if (retention <= 0 || !view.retire_now || view.lease_id === null) return [];
  if (view.hooks_stalled) return []; // back-pressure: no writes that can wait
  const self = view.config.node_id;
  const members = liveMembers(view);
  const out: Effect[] = [];
  let budget = RETIRE_BATCH;
  for (const [specId, spec] of view.specs) {
    if (budget <= 0) break;
    if (spec.value.dispatched_at + retention > at) continue;
    if (hrwWinner(specId, members) !== self) continue;
    const ids = view.spec_tasks.get(specId);
    if (ids === undefined || ids.size === 0) {
      if (!view.inflight.has(specId)) {
        out.push({
          ...specDelete(keys, specId, spec.mod_revision),
          on_commit: {
            kind: "log",
            level: "info",
            msg: "spec retired",
            fields: { spec_id: specId, tasks: spec.value.task_ids.length },
          },
        });
      }
      continue;
    }
    const ended = endedAt(view, ids);
    if (ended === null || ended + retention > at) continue;
    for (const id of ids) {
      if (budget <= 0) break;
      const t = view.tasks.get(id);
      if (t === undefined || view.inflight.has(id)) continue;
      out.push(envelopeDelete(keys, t));
      budget--;
    }
  }
  out.push(...decideOrphans(view, keys, at, budget, members));
  return out;
}

/**
 * When the last of `ids` ended, or null while one has not ended here: not
 * terminal, or still a worker, a claim or a parked result on this node.
 */
function endedAt(view: NodeView, ids: ReadonlySet<string>): number | null {
  let latest = 0;
  for (const id of ids) {
    const t = view.tasks.get(id)?.value;
    if (!t || !TERMINAL_STATES.has(t.state)) return null;
    if (view.workers.has(id) || view.claims.has(id) || view.flushed.has(id)) {
      return null;
    }
    latest = Math.max(latest, t.finished_at ?? t.dispatched_at);
  }
  return latest;
}

/** A delete of one envelope: compares its mod as seen and that it has no claim. */
export function envelopeDelete(
  keys: Keys,
  t: Versioned<Envelope>,
): TxnEffect {
  const id = t.value.task_id;
  return {
    kind: "txn",
    reason: "retire",
    task_id: id,
    compare: [
      { key: keys.task(id), target: "mod", equals: t.mod_revision },
      { key: keys.claim(id), target: "version", equals: 0 },
    ],
    success: [{ op: "delete", key: keys.task(id) }],
  };
}

/** The spec record, once none of its envelopes is left (`task_id` is the spec id here). */
function specDelete(keys: Keys, specId: string, mod: number): TxnEffect {
  return {
    kind: "txn",
    reason: "retire",
    task_id: specId,
    compare: [
      { key: keys.spec(specId), target: "mod", equals: mod },
      // None of its envelopes left, seen or not: one this view skipped
      // (unreadable, oversized) still needs its spec record.
      {
        key: `${keys.task(specId)}.`,
        range_end: `${keys.task(specId)}/`,
        target: "version",
        equals: 0,
      },
    ],
    success: [{ op: "delete", key: keys.spec(specId) }],
  };
}
