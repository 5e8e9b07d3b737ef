/**
 * The claimant's side of a task: start its worker only when the view still
 * says it may (claim ours, no cancel, lease known alive), stop it the moment
 * it must not go on, and commit its result under the fence.
 */
import type { Envelope } from "../schema.ts";
import type { Effect } from "./effects.ts";
import type { DecideContext } from "./decide.ts";
import { finishEnvelope } from "./finish.ts";
import { fencedTxn } from "./txns.ts";
import type { NodeView, Versioned, Worker } from "./view.ts";

/** The claimant's side: start, report, cancel and commit its worker under the fence. */
export function decideWorker(
  view: NodeView,
  w: Worker,
  t: Versioned<Envelope> | undefined,
  ctx: DecideContext,
): Effect[] {
  // The watch may show our own commit before the transaction's answer
  // arrives: judge a finished worker only once its write has resolved. A
  // live one is stopped at once when it must not go on — the write in flight
  // (RUNNING) changes nothing about that.
  const inflight = view.inflight.has(w.task_id);
  if (inflight && w.phase === "exited") return [];
  const claim = view.claims.get(w.task_id);
  const mine = claim !== undefined && claim.create_revision === w.fence &&
    claim.lease === view.lease_id;
  if (!mine || !t) {
    if (w.phase === "exited") {
      return [
        {
          kind: "drop_worker",
          task_id: w.task_id,
          fence: w.fence,
          expired: !w.killing,
        },
        {
          kind: "log",
          level: "warn",
          msg: "result refused by fence",
          fields: { task_id: w.task_id, fence: w.fence, result: w.result },
        },
        {
          kind: "emit",
          event: "task.result_superseded",
          payload: { task_id: w.task_id, fence: w.fence },
        },
      ];
    }
    return stopWorker(w, "claim lost", 0);
  }
  const env = t.value;
  // Back-pressure: results wait (in order, see onHooksBackpressure); a cancel's kill does not.
  const stalled = view.hooks_stalled;
  if (w.phase === "exited" && w.result) {
    if (stalled) return [];
    return [
      fencedTxn(
        ctx.keys,
        "finish",
        t,
        w.fence,
        finishEnvelope(
          view.config,
          env,
          w.fence,
          w.result,
          w.started_at,
        ),
        true,
      ),
    ];
  }
  if (env.cancel_requested) {
    return stopWorker(w, "cancel requested", view.config.cancel_grace_ms);
  }
  if (w.phase === "prepared") {
    // Aborted (its workspace going, its "not started" exit queued behind
    // events already waiting): final, even if those events make the claim
    // look ours again, or the command would run untracked beside a re-queue.
    if (w.killing) return [];
    // The moment the command would start: the claim is ours and nobody
    // asked to cancel, in the view as it is now — and the lease is known to
    // be alive now, not merely not known to be dead (after a freeze the
    // prepared answer may be read before the lease loss is).
    if (ctx.at >= view.lease_valid_until) return [];
    return [{
      kind: "spawn",
      task_id: w.task_id,
      fence: w.fence,
      attempt: w.attempt,
      envelope: env,
      workdir: w.workdir ?? "",
      env: { ...(w.ws_env ?? {}) },
    }];
  }
  if (
    w.phase === "running" && env.state === "CLAIMED" && !inflight &&
    !stalled && runningDue(view, w, ctx.at)
  ) {
    return [fencedTxn(ctx.keys, "running", t, w.fence, {
      ...env,
      state: "RUNNING",
      state_version: env.state_version + 1,
      started_at: w.started_at,
      fence: w.fence,
    }, false)];
  }
  return [];
}

/** Default of `CoreConfig.running_write_after_ms`. */
export const RUNNING_WRITE_AFTER_MS = 50;

/**
 * Whether the RUNNING write is due: short tasks end before it and fold it
 * into their finish (same fence and envelope compares, `started_at` in it).
 */
function runningDue(view: NodeView, w: Worker, at: number): boolean {
  const after = view.config.running_write_after_ms ?? RUNNING_WRITE_AFTER_MS;
  return w.started_at === null || at - w.started_at >= after;
}

/**
 * A worker that may not go on: not started yet → never start it; started →
 * kill it. While Prepare is in flight there is nothing to stop: the decision
 * comes when it returns (`prepared`).
 */
function stopWorker(w: Worker, reason: string, graceMs: number): Effect[] {
  if (w.killing || w.phase === "preparing" || w.phase === "exited") return [];
  if (w.phase === "prepared") {
    return [{
      kind: "abort",
      task_id: w.task_id,
      fence: w.fence,
      workdir: w.workdir ?? "",
      reason,
    }];
  }
  return [{
    kind: "kill",
    task_id: w.task_id,
    fence: w.fence,
    grace_ms: graceMs,
    reason,
  }];
}
