/**
 * The per-task decision: given the view, what should this node do about one
 * task right now? Level-triggered, so a missed or duplicated event only
 * delays a decision, it never makes a wrong one; correctness comes from the
 * compares in the transactions, not from the view being fresh.
 */
import type { Envelope } from "../schema.ts";
import type { Effect } from "./effects.ts";
import { hrwWinner } from "./hrw.ts";
import { capableFor, type DecideContext, isFull } from "./decide_context.ts";
import { hasOwnBacklog } from "./steal.ts";
import { routed, routedOwner, routedRank, spillSince } from "./routing.ts";
import { claimTxn, fencedTxn, strayClaimTxn, unclaimedTxn } from "./txns.ts";
import type { NodeView, Versioned } from "./view.ts";
import { unschedulableNote } from "./provision_note.ts";
import { decideWorker } from "./worker_decide.ts";
import { finishEnvelope } from "./finish.ts";
import { failedHere } from "./filter.ts";

export { type DecideContext, decideContext, isFull } from "./decide_context.ts";

export function decideTask(
  view: NodeView,
  taskId: string,
  ctx: DecideContext,
): Effect[] {
  const t = view.tasks.get(taskId);
  const worker = view.workers.get(taskId);
  if (worker) return decideWorker(view, worker, t, ctx);
  if (!t || !view.specs.has(t.value.spec_id)) return []; // spec not committed
  if (view.inflight.has(taskId)) return [];
  const env = t.value;
  const claim = view.claims.get(taskId);
  // Stray only once the view has caught up with the claim: a node registers
  // (under its lease) before it claims, so at the claim's revision its node
  // record is in the view. A claim read ahead of the watch (a failed
  // compare's read-back) is not judged yet; nor is our own fresh lease.
  if (
    claim && claim.lease !== view.lease_id &&
    !ctx.liveLeases.has(claim.lease) &&
    claim.mod_revision <= view.watch_revision
  ) {
    return isMonitor(view, taskId, ctx)
      ? [strayClaimTxn(ctx.keys, t, claim)]
      : [];
  }
  switch (env.state) {
    case "BLOCKED":
      return decideBlocked(view, t, ctx);
    case "PENDING":
      return decidePending(view, t, ctx);
    case "CLAIMED":
    case "RUNNING":
      return decideClaimed(view, t, ctx);
    default:
      return [];
  }
}

/** True if this node is the task's monitor: first in HRW order over all live nodes. */
export function isMonitor(
  view: NodeView,
  taskId: string,
  ctx: DecideContext,
): boolean {
  if (view.lease_id === null) return false;
  return hrwWinner(taskId, ctx.memberIds) === view.config.node_id;
}

/** How a task re-queued (or failed) by its monitor after its claimant's lease expired says so. */
export const LEASE_EXPIRED = "lease expired on ";

const MISSING = " missing";
const missingNote = (dep: string) => `dependency ${dep}${MISSING}`;

function decideBlocked(
  view: NodeView,
  t: Versioned<Envelope>,
  ctx: DecideContext,
): Effect[] {
  const env = t.value;
  if (view.hooks_stalled || !isMonitor(view, env.task_id, ctx)) return [];
  // A claim on a BLOCKED task (stray, being removed): every write below needs it gone.
  if (view.claims.has(env.task_id)) return [];
  let allDone = true;
  let missing: string | null = null;
  for (const dep of env.depends_on) {
    const d = view.tasks.get(dep)?.value;
    if (!d) {
      // Missing only if its spec record lists it (a dispatch writes every
      // task before that record); otherwise it may simply not be visible yet.
      if (view.specs.get(env.spec_id)?.value.task_ids.includes(dep)) {
        missing ??= dep;
        continue;
      }
      return [];
    }
    if (d.state === "FAILED" || d.state === "CANCELLED") {
      const next: Envelope = {
        ...env,
        state: "CANCELLED",
        state_version: env.state_version + 1,
        last_error: `dependency ${dep} ${d.state}`,
        finished_at: ctx.at,
      };
      return [unclaimedTxn(ctx.keys, "cancel_dependent", t, next)];
    }
    if (d.state !== "DONE") allDone = false;
  }
  if (missing !== null) {
    // A dependency its committed spec lists but the view lacks was deleted,
    // or overwritten with an invalid record, by hand. Say so on the task,
    // once, rather than wait in silence; it runs when the dependency is back
    // and DONE.
    const note = missingNote(missing);
    if (env.last_error === note) return [];
    return [unclaimedTxn(ctx.keys, "note", t, {
      ...env,
      state_version: env.state_version + 1,
      last_error: note,
    })];
  }
  if (!allDone) return [];
  if (env.cancel_requested) return [];
  const next: Envelope = {
    ...env,
    state: "PENDING",
    state_version: env.state_version + 1,
    last_error: env.last_error?.endsWith(MISSING) ? null : env.last_error,
  };
  return [unclaimedTxn(ctx.keys, "unblock", t, next)];
}

function decidePending(
  view: NodeView,
  t: Versioned<Envelope>,
  ctx: DecideContext,
): Effect[] {
  const env = t.value;
  if (view.claims.has(env.task_id)) return []; // transient: a claim we have not seen the envelope of
  if (env.not_before !== null && ctx.at < env.not_before) return [];
  const capable = capableFor(ctx, env.requires);
  if (capable.length === 0) {
    if (!isMonitor(view, env.task_id, ctx)) return [];
    const effects: Effect[] = [];
    if (!view.unschedulable_reported.has(env.task_id)) {
      effects.push({
        kind: "emit",
        event: "task.unschedulable",
        payload: { task_id: env.task_id, requires: env.requires },
      });
    }
    const note = unschedulableNote(view.provision, env.requires, ctx.at);
    if (env.last_error !== note && !view.hooks_stalled) {
      effects.push(unclaimedTxn(ctx.keys, "unschedulable", t, {
        ...env,
        state_version: env.state_version + 1,
        last_error: note,
      }));
    }
    return effects;
  }
  // Not past the lease's known life either (a frozen node just thawed):
  // etcd refuses a put under an expired lease, and the refusal fails every
  // other write of the same group commit (review of 1be6b22).
  if (
    view.dispatch_paused || view.lease_id === null || view.hooks_stalled ||
    ctx.at >= view.lease_valid_until
  ) {
    return [];
  }
  const self = view.config.node_id;
  const me = capable.find((n) => n.node_id === self);
  if (!me || me.draining) return [];
  if (isFull(ctx)) return [];
  // The router's advice first (SPEC §5.2; none without a router plugin): it
  // may only narrow the candidates, and our claim waits for its answer.
  const r = routed(view, env, capable);
  if (r.step === "ask") return [r.effect];
  if (r.step === "wait") return [];
  // A retry of an attempt our own workspace lost (its Prepare failed here,
  // none has succeeded since) is not ours: HRW hands it straight back, and
  // our claim at `not_before` beats every other node's spill-over delay, so
  // a node with fewer than `claim_failure_limit` tasks to fail never
  // degraded and burnt each one's max_attempts, FAILED here while a healthy
  // node idled (cooldown_test under CI load). We take it last, one spill
  // delay after every other candidate: bounded, so a task whose Prepare
  // fails everywhere (its own fault) still ends FAILED after max_attempts.
  const lostHere = failedHere(view, env.task_id);
  // The best of the capable nodes that take work, full or not: then also the
  // first of the candidates (they are some of those, and we are one).
  if (!lostHere && routedOwner(env.task_id, r) === self) {
    ctx.claimed++;
    return [claimTxn(ctx.keys, t, self, view.lease_id, ctx.at)];
  }
  // Another node's task (spill-over, or its owner looked full in its last
  // published caps). Not while we have our own work: under a backlog every
  // node would otherwise race for the same oldest tasks and half of all
  // claims would fail (measured: 5,000 conflicts for 5,000 tasks). Not while
  // a lost claim says the view lags: what looks PENDING here may long be
  // taken (measured under load, 9 nodes: 7,500 steals lost to owners for
  // 3,000 tasks, most after every task was claimed). Checked before the rank:
  // this is most PENDING tasks a node looks at, and the cheap answer.
  if (
    view.watch_revision < view.steal_after_revision || hasOwnBacklog(view, ctx)
  ) return [];
  const rank = lostHere ? r.capable.length : routedRank(env, r, self);
  if (rank > 0) {
    const seen = view.pending_since.get(env.task_id);
    const wait = view.config.spill_after_ms +
      (rank - 1) * view.config.spill_step_ms +
      (lostHere ? view.config.spill_after_ms : 0);
    if (!seen || ctx.at - spillSince(view, env, seen.at) < wait) return [];
  }
  ctx.steals.push(t);
  return [];
}

function decideClaimed(
  view: NodeView,
  t: Versioned<Envelope>,
  ctx: DecideContext,
): Effect[] {
  const env = t.value;
  const claim = view.claims.get(env.task_id);
  // Our parked result for this claim waits in the pending-flush file: never run it again.
  if (view.flushed.has(env.task_id)) return [];
  if (claim) {
    const mine = claim.value.node_id === view.config.node_id &&
      claim.lease === view.lease_id &&
      env.claimant_node_id === view.config.node_id;
    // One fence is one attempt: never prepared twice here, even when a stale
    // view (right after a flush replay) still shows the claim CLAIMED.
    const ranHere = view.attempted.get(env.task_id) === claim.create_revision;
    if (
      mine && env.state === "CLAIMED" && !env.cancel_requested && !ranHere
    ) {
      return [{
        kind: "prepare",
        task_id: env.task_id,
        fence: claim.create_revision,
        lease: claim.lease,
        attempt: claim.value.attempt,
        envelope: env,
      }];
    }
    if (mine) {
      // Our own claim and no worker here: cancelled before it started, or
      // RUNNING with its result gone (evicted from the pending flush, say).
      // End it under the fence (CANCELLED, or re-queued as an attempt lost)
      // instead of holding it forever.
      return [
        fencedTxn(
          ctx.keys,
          "finish",
          t,
          claim.create_revision,
          finishEnvelope(
            view.config,
            env,
            claim.create_revision,
            {
              code: null,
              signal: null,
              error: "worker lost on its node",
              lost: true,
              finished_at: ctx.at,
            },
            env.started_at,
          ),
          true,
        ),
      ];
    }
    return [];
  }
  // The claim is gone (its lease expired): the task's monitor puts it back.
  if (view.hooks_stalled || !isMonitor(view, env.task_id, ctx)) return [];
  const lost = env.claimant_node_id ?? "unknown node";
  const base = {
    ...env,
    state_version: env.state_version + 1,
    claimant_node_id: null,
    claim_lease_id: null,
  };
  let next: Envelope;
  if (env.cancel_requested) {
    next = {
      ...base,
      state: "CANCELLED",
      last_error: "cancelled by user",
      finished_at: ctx.at,
    };
  } else if (env.attempts >= env.max_attempts) {
    next = {
      ...base,
      state: "FAILED",
      last_error:
        `${LEASE_EXPIRED}${lost}; ${env.attempts} of ${env.max_attempts} attempts used`,
      finished_at: ctx.at,
    };
  } else {
    next = {
      ...base,
      state: "PENDING",
      last_error: `${LEASE_EXPIRED}${lost}`,
    };
  }
  return [unclaimedTxn(ctx.keys, "requeue", t, next)];
}
