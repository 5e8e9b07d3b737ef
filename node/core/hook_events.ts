/**
 * Which events (SPEC §8) a node emits, decided from what it committed or
 * saw. Pure. Every event has exactly one emitter:
 * - task transitions: the node whose transaction committed them (so a
 *   transition is reported once, never once per node that saw it);
 * - `task.dispatched`: the task's HRW monitor, when the spec record that
 *   commits a dispatch appears in its watch; likewise `task.cancelled` for a
 *   waiting task `tasks cancel` cancelled directly;
 * - `node.joined`: the node itself on each registration; `node.left`: the HRW
 *   monitor of the node id among the nodes still live.
 * @module
 */
import type { Envelope } from "../schema.ts";
import type { Keys } from "../keys.ts";
import type { EventKind, EventPayload } from "../hooks/event_schemas.ts";
import type { EmitEffect, TxnEffect } from "./effects.ts";
import type { KeyChange } from "./events.ts";
import { hrwWinner } from "./hrw.ts";
import { liveMembers } from "./decide_context.ts";
import { LEASE_EXPIRED } from "./decide.ts";
import type { NodeView } from "./view.ts";

/** A typed emit effect: the payload checked against the kind's schema type. */
export function emit<K extends EventKind>(
  event: K,
  payload: EventPayload<K>,
): EmitEffect {
  return { kind: "emit", event, payload };
}

/** The envelope a transaction wrote, if it wrote one. */
function writtenEnvelope(keys: Keys, e: TxnEffect): Envelope | null {
  const put = e.success.find((op) =>
    op.op === "put" && op.key === keys.task(e.task_id)
  );
  return put?.op === "put" ? JSON.parse(put.value) as Envelope : null;
}

/** decide.ts writes `lease expired on <node>` (then maybe `; ...`) into a re-queued task. */
function lostNode(lastError: string | null): string {
  if (!lastError?.startsWith(LEASE_EXPIRED)) return "unknown node";
  return lastError.slice(LEASE_EXPIRED.length).split(";")[0];
}

/**
 * The events of one of this node's own transactions that committed at
 * `revision`; called once per commit (txn_done ok).
 */
export function committedEvents(
  keys: Keys,
  e: TxnEffect,
  revision: number,
): EmitEffect[] {
  const next = writtenEnvelope(keys, e);
  if (next === null) return [];
  const base = { task_id: next.task_id, spec_id: next.spec_id };
  const node = next.ran_on ?? next.claimant_node_id;
  switch (e.reason) {
    case "claim":
      return [emit("task.claimed", {
        ...base,
        node_id: next.claimant_node_id ?? "",
        attempt: next.attempts,
        fence: revision,
      })];
    case "running":
      return [started(next)];
    case "finish":
      // A task that ended before its RUNNING write went CLAIMED→DONE (or
      // FAILED) in one write: it did start, so it gets task.started too.
      if (e.from_state === "CLAIMED" && next.started_at !== null) {
        return [started(next), ...endEvents(e, next, node)];
      }
      break;
    case "requeue":
    case "cancel_dependent":
      break;
    default:
      return []; // unblock, unschedulable, note: no SPEC §8 kind
  }
  return endEvents(e, next, node);
}

/** `task.started` of the attempt `next` records. */
function started(next: Envelope): EmitEffect {
  return emit("task.started", {
    task_id: next.task_id,
    spec_id: next.spec_id,
    // A CLAIMED→DONE write clears the claimant: the node that ran it.
    node_id: next.ran_on ?? next.claimant_node_id ?? "",
    attempt: next.attempts,
    fence: next.fence ?? 0,
    started_at: next.started_at,
  });
}

/** The events of a transaction that ends an attempt (finish, re-queue, cancel). */
function endEvents(
  e: TxnEffect,
  next: Envelope,
  node: string | null,
): EmitEffect[] {
  const base = { task_id: next.task_id, spec_id: next.spec_id };
  switch (next.state) {
    case "DONE":
      return [emit("task.completed", {
        ...base,
        node_id: node ?? "",
        attempt: next.attempts,
        fence: next.fence ?? 0,
        exit_code: next.exit_code,
        started_at: next.started_at,
        finished_at: next.finished_at,
        duration_ms: next.started_at !== null && next.finished_at !== null
          ? next.finished_at - next.started_at
          : null,
      })];
    case "FAILED":
    case "PENDING":
      if (e.reason === "requeue" && next.state === "PENDING") {
        return [emit("task.reassigned", {
          ...base,
          from_node_id: lostNode(next.last_error),
          attempts: next.attempts,
          max_attempts: next.max_attempts,
          last_error: next.last_error,
        })];
      }
      return [emit("task.failed", {
        ...base,
        node_id: e.reason === "finish" ? node : null,
        attempt: Math.max(1, next.attempts),
        exit_code: next.exit_code,
        last_error: next.last_error,
        final: next.state === "FAILED",
        retry_at: next.state === "PENDING" ? next.not_before : null,
      })];
    case "CANCELLED":
      return [emit("task.cancelled", {
        ...base,
        node_id: e.reason === "finish" ? node : null,
        reason: e.reason === "cancel_dependent" ? "dependency" : "user",
        last_error: next.last_error,
      })];
    default:
      return [];
  }
}

/**
 * Events a watch batch shows this node it must emit: `node.left` for a node
 * record that vanished (if we are its monitor), `task.dispatched` for each
 * task of a newly committed spec (if we are the task's monitor). A re-list
 * never emits: it cannot tell new from old. The per-task ones only when
 * something takes them (`CoreConfig.watched_task_events`): finding a task's
 * monitor ranks it over every member, for every task of the cluster.
 * Monitors are ranked over the members decide.ts's `isMonitor` uses (a
 * lease-bound node record with caps): a record without them would win some
 * tasks on every node and their events would have no emitter.
 */
export function watchedEvents(
  view: NodeView,
  keys: Keys,
  changes: readonly KeyChange[],
): EmitEffect[] {
  if (view.lease_id === null) return [];
  const self = view.config.node_id;
  const tasks = view.config.watched_task_events ?? true;
  const out: EmitEffect[] = [];
  let members: string[] | null = null;
  for (const c of changes) {
    if (c.kv === null) {
      const p = keys.parse(c.key);
      if (p?.collection !== "nodes" || p.id === self) continue;
      members ??= liveMembers(view);
      if (hrwWinner(p.id, members) === self) {
        out.push(emit("node.left", { node_id: p.id }));
      }
      continue;
    }
    if (!tasks) continue;
    const p = keys.parse(c.key);
    if (p?.collection === "dispatch-queue") {
      // `tasks cancel` of a waiting task: the CLI made the transition, so the
      // task's monitor reports it (every node's own CANCELLED commits carry
      // cancel_requested or a dependency reason and are reported on commit).
      const t = view.tasks.get(p.id);
      const env = t?.value;
      if (
        env && t.mod_revision === c.kv.mod_revision &&
        env.state === "CANCELLED" && !env.cancel_requested &&
        env.last_error === "cancelled by user"
      ) {
        members ??= liveMembers(view);
        if (hrwWinner(p.id, members) === self) {
          out.push(emit("task.cancelled", {
            task_id: env.task_id,
            spec_id: env.spec_id,
            node_id: null,
            reason: "user",
            last_error: env.last_error,
          }));
        }
      }
    } else if (
      p?.collection === "specs" && c.kv.create_revision === c.kv.mod_revision
    ) {
      members ??= liveMembers(view);
      for (const id of view.specs.get(p.id)?.value.task_ids ?? []) {
        const t = view.tasks.get(id)?.value;
        if (!t || hrwWinner(id, members) !== self) continue;
        out.push(emit("task.dispatched", {
          task_id: id,
          spec_id: t.spec_id,
          state: t.state === "BLOCKED" ? "BLOCKED" : "PENDING",
          requires: t.requires,
          dispatched_at: t.dispatched_at,
        }));
      }
    }
  }
  return out;
}
