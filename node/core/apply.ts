/**
 * The view reducer: folds events (and the local side of effects) into the
 * view. Pure apart from updating the view it is given; no I/O, no clock.
 */
import { noteRouteAdvice, noteRouteAsked } from "./routing.ts";
import type { Keys } from "../keys.ts";
import type { Effect } from "./effects.ts";
import { applyChange, applyOwnOp } from "./view_changes.ts";
import type { KeyChange, NodeEvent } from "./events.ts";
import type { MutableView } from "./view.ts";
import { applyReads, lateReads, newerThan } from "./view_order.ts";
import {
  applyProvisionEffect,
  applyProvisionEvent,
  clearProvisionRecords,
} from "./provision_apply.ts";
import { retireEvery, SPEC_RETENTION_MS } from "./retire.ts";
import { noteOrphanRefused, noteOrphans } from "./retire_orphans.ts";
import { noteUnsure, settleUnsure } from "./unsure.ts";
import { txnCommitted } from "./txn_outcome.ts";

/** Default of `CoreConfig.sweep_every_ms`. */
export const SWEEP_EVERY_MS = 1000;

/** Applies one event; returns warnings (invalid records) for the shell to log. */
export function applyEvent(
  view: MutableView,
  keys: Keys,
  ev: NodeEvent,
): string[] {
  const warnings: string[] = [];
  if (view.landed.length > 0) view.landed = [];
  switch (ev.type) {
    case "changes": {
      // One parse per change: the task ids and claims are gathered as the
      // changes are applied (every node applies every change of the cluster).
      const taskIds: string[] = [];
      let claims: [id: string, key: string][] | null = null;
      // One stream, in revision order, a revision never split over two
      // responses: a change at or below what it already delivered is a
      // repeat. Applied, an old put would bring back a key deleted since
      // (a claim that then blocks the task here).
      const seen = view.watch_revision;
      for (const c of ev.changes) {
        if (c.revision <= seen) continue;
        const p = applyChange(view, keys, c, warnings);
        if (c.revision > view.watch_revision) view.watch_revision = c.revision;
        if (p?.collection === "dispatch-queue") taskIds.push(p.id);
        else if (p?.collection === "claims" && c.kv !== null) {
          (claims ??= []).push([p.id, c.key]);
        }
      }
      // After the whole batch: a claim and its envelope may come in one.
      for (const [id, key] of claims ?? []) {
        if (!view.tasks.has(id)) {
          warnings.push(`${key}: claim for a task that does not exist`);
        }
      }
      if (view.tombstones.size > 0) {
        for (const [k, rev] of view.tombstones) {
          if (rev <= view.watch_revision) view.tombstones.delete(k);
        }
      }
      settleUnsure(view, taskIds);
      notePending(view, ev.at, taskIds);
      break;
    }
    case "relist": {
      // Paging a large list takes a while, and the node goes on meanwhile:
      // its own acknowledged writes after the list's revision (a claim, an
      // envelope, a delete) are newer than the list and must outlive it, or
      // a running worker would look unclaimed and be killed.
      const newer = newerThan(view, keys, ev.revision);
      view.nodes.clear();
      view.caps.clear();
      view.specs.clear();
      view.tasks.clear();
      view.spec_tasks.clear();
      view.orphans_seen.clear(); // their grace starts again: the safe side
      view.dependents.clear();
      view.pending.clear();
      view.open.clear();
      view.claims.clear();
      view.tombstones.clear();
      view.dispatch_paused = false;
      view.draining.clear();
      view.dispatching.clear();
      clearProvisionRecords(view.provision, keys, ev.kvs);
      view.watch_revision = ev.revision;
      for (const c of ev.kvs) applyChange(view, keys, c, warnings);
      applyReads(view, keys, newer, warnings);
      warnOrphanClaims(view, keys, ev.kvs, warnings);
      for (const id of view.pending_since.keys()) {
        if (!view.tasks.has(id)) view.pending_since.delete(id);
      }
      for (const id of view.routes.keys()) {
        if (!view.tasks.has(id)) view.routes.delete(id);
      }
      for (const id of view.attempted.keys()) {
        if (!view.tasks.has(id)) view.attempted.delete(id);
      }
      settleUnsure(view, [...view.unsure.keys()]);
      notePending(view, ev.at);
      break;
    }
    case "result_flushed": {
      const w = view.workers.get(ev.task_id);
      if (w && w.fence === ev.fence) view.workers.delete(ev.task_id);
      view.flushed.set(ev.task_id, ev.fence);
      break;
    }
    case "flush_resolved":
      view.flushed.delete(ev.task_id);
      break;
    case "plugins_health":
      view.plugins_healthy = ev.healthy;
      // A plugin that crashed fails the Prepares in flight, often before
      // its crash is seen: those are the crash's (its own budget counts it),
      // not a workspace that refuses work (spec_cache_test: a SIGKILLed
      // workspace plugin left its only node degraded for 5 min).
      if (!ev.healthy && view.prepare_failures.length > 0) {
        view.prepare_failures = [];
      }
      break;
    case "hooks_backpressure":
      view.hooks_stalled = ev.stalled;
      break;
    case "lease_granted":
      view.lease_id = ev.lease_id;
      view.lease_valid_until = ev.valid_until;
      break;
    case "lease_renewed":
      if (view.lease_id === ev.lease_id) {
        view.lease_valid_until = Math.max(
          view.lease_valid_until,
          ev.valid_until,
        );
      }
      break;
    case "lease_lost":
      view.lease_id = null;
      view.lease_valid_until = 0;
      break;
    case "txn_done":
      view.inflight.delete(ev.effect.task_id);
      view.unsure.delete(ev.effect.task_id);
      if (txnCommitted(ev)) {
        // A committed result retires its worker; anything left would look unfenced.
        if (ev.effect.reason === "finish") {
          view.workers.delete(ev.effect.task_id);
        }
        if (ev.ok) {
          for (const op of ev.effect.success) {
            applyOwnOp(view, keys, op, ev.revision, warnings);
          }
        } else lateReads(view, keys, ev.reads!, ev.revision, warnings);
        notePending(view, ev.at, [ev.effect.task_id]);
      } else if (ev.reads) {
        // Re-read, then re-decide: the failed compare's current records.
        lateReads(view, keys, ev.reads, ev.revision, warnings);
        noteOrphanRefused(view, keys, ev.effect, ev.reads);
        notePending(view, ev.at, [ev.effect.task_id]);
        if (ev.effect.reason === "claim") {
          view.steal_after_revision = Math.max(
            view.steal_after_revision,
            ev.revision,
          );
        }
      } else if (ev.error !== null) {
        noteUnsure(view, keys, ev.effect);
        notePending(view, ev.at, [ev.effect.task_id]);
      }
      break;
    case "worker_prepared": {
      const w = view.workers.get(ev.task_id);
      if (w && w.fence === ev.fence && w.phase === "preparing") {
        if (view.prepare_failures.length > 0) view.prepare_failures = [];
        view.workers.set(ev.task_id, {
          ...w,
          phase: "prepared",
          workdir: ev.workdir,
          ws_env: ev.env,
        });
      }
      break;
    }
    case "worker_started": {
      const w = view.workers.get(ev.task_id);
      if (w && w.fence === ev.fence) {
        view.workers.set(ev.task_id, {
          ...w,
          phase: "running",
          pid: ev.pid,
          started_at: ev.at,
          // A kill sent before the Pool knew the worker may have found nothing: decide it again.
          killing: false,
        });
      }
      break;
    }
    case "kill_failed": {
      const w = view.workers.get(ev.task_id);
      if (w && w.fence === ev.fence && w.phase !== "exited") {
        view.workers.set(ev.task_id, { ...w, killing: false });
      }
      break;
    }
    case "worker_exit": {
      const w = view.workers.get(ev.task_id);
      if (w && w.fence === ev.fence) {
        // A Prepare that failed by itself (not one we aborted: a stop, a
        // cancel, a lost claim) is the node's failure, not the task's.
        if (
          w.phase === "preparing" && ev.lost && !w.killing &&
          view.plugins_healthy
        ) {
          const limit = view.config.claim_failure_limit;
          view.prepare_failures = [
            ...view.prepare_failures.filter((f) => f.task_id !== ev.task_id),
            { at: ev.at, task_id: ev.task_id },
          ].slice(-limit);
        }
        view.workers.set(ev.task_id, {
          ...w,
          phase: "exited",
          started_at: w.started_at,
          result: {
            code: ev.code,
            signal: ev.signal,
            error: ev.error,
            lost: ev.lost,
            finished_at: ev.at,
          },
        });
      }
      break;
    }
    case "provision":
      applyProvisionEvent(view.provision, ev);
      break;
    case "route_advice":
      noteRouteAdvice(view, ev);
      break;
    case "tick": {
      const every = view.config.sweep_every_ms ?? SWEEP_EVERY_MS;
      view.sweep_now = ev.at - view.swept_at >= every;
      if (view.sweep_now) view.swept_at = ev.at;
      const retention = view.config.spec_retention_ms ?? SPEC_RETENTION_MS;
      if (view.retired_at === 0) view.retired_at = ev.at;
      view.retire_now = retention > 0 &&
        ev.at - view.retired_at >= retireEvery(retention);
      if (view.retire_now) {
        view.retired_at = ev.at;
        noteOrphans(view, ev.at);
      }
      break;
    }
  }
  return warnings;
}

/** A claim for a task that does not exist is a stray record someone should know about. */
function warnOrphanClaims(
  view: MutableView,
  keys: Keys,
  changes: KeyChange[],
  warnings: string[],
): void {
  for (const c of changes) {
    if (c.kv === null) continue;
    const p = keys.parse(c.key);
    if (p?.collection === "claims" && !view.tasks.has(p.id)) {
      warnings.push(`${c.key}: claim for a task that does not exist`);
    }
  }
}

/** Records the local half of effects as they are issued (in-flight writes, workers). */
export function applyEffects(
  view: MutableView,
  effects: Effect[],
  at: number,
): void {
  for (const e of effects) {
    switch (e.kind) {
      case "txn":
        view.inflight.set(e.task_id, e.reason);
        // A write sent again gets its own verdict (its read-back recognises
        // the first if that landed): recognising it here too announced its
        // events twice (review of 1432f3e).
        view.unsure.delete(e.task_id);
        break;
      case "prepare":
        view.attempted.set(e.task_id, e.fence);
        view.workers.set(e.task_id, {
          task_id: e.task_id,
          fence: e.fence,
          attempt: e.attempt,
          phase: "preparing",
          pid: null,
          started_at: null,
          result: null,
          killing: false,
          lease: e.lease,
          workdir: null,
          ws_env: null,
        });
        break;
      case "spawn": {
        const w = view.workers.get(e.task_id);
        if (w && w.fence === e.fence) {
          view.workers.set(e.task_id, { ...w, phase: "starting" });
        }
        break;
      }
      case "abort": {
        const w = view.workers.get(e.task_id);
        if (w && w.fence === e.fence) {
          view.workers.set(e.task_id, { ...w, killing: true });
        }
        if (w && e.reason === "claim lost") noteExpiry(view, at, w.lease);
        break;
      }
      case "kill": {
        const w = view.workers.get(e.task_id);
        if (w && w.fence === e.fence) {
          view.workers.set(e.task_id, { ...w, killing: true });
        }
        if (w && e.reason === "claim lost") noteExpiry(view, at, w.lease);
        break;
      }
      case "drop_worker": {
        const w = view.workers.get(e.task_id);
        if (w && w.fence === e.fence) view.workers.delete(e.task_id);
        if (w && e.expired) noteExpiry(view, at, w.lease);
        break;
      }
      case "emit":
        if (e.event === "task.unschedulable") {
          view.unschedulable_reported.add(String(e.payload.task_id));
        }
        if (e.event === "node.degraded") view.reported_health = "degraded";
        if (e.event === "node.healed") view.reported_health = "ok";
        break;
      case "provision":
        applyProvisionEffect(view.provision, e, at);
        break;
      case "route":
        noteRouteAsked(view, e);
        break;
      case "log":
        break;
    }
  }
}

/**
 * Records a claim-failure incident. Every claim of one lease expires with it,
 * so a lease counts once however many claims it held (one etcd hiccup must
 * not put a busy node into cooldown by itself).
 */
function noteExpiry(view: MutableView, at: number, lease: string): void {
  if (view.expired_leases.has(lease)) return;
  view.expired_leases.add(lease);
  if (view.expired_leases.size > 100) {
    view.expired_leases.delete(view.expired_leases.values().next().value!);
  }
  const c = view.config;
  const horizon = at - c.claim_failure_window_ms - c.claim_failure_cooldown_ms;
  view.claim_expiries = [...view.claim_expiries.filter((t) => t > horizon), at];
}

/** Starts the spill-over clock of tasks (all, or those given) that just became PENDING. */
function notePending(
  view: MutableView,
  at: number,
  only?: Iterable<string>,
): void {
  for (const id of only ?? view.tasks.keys()) {
    const t = view.tasks.get(id);
    if (!t || t.value.state !== "PENDING") {
      view.pending_since.delete(id);
      view.routes.delete(id);
      continue;
    }
    const seen = view.pending_since.get(id);
    if (!seen || seen.sv !== t.value.state_version) {
      view.pending_since.set(id, { sv: t.value.state_version, at });
    }
  }
}
