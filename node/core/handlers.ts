/**
 * The named handlers of SPEC §1. Each turns (view, event) into effects by
 * picking which tasks to re-decide; `decideTask` holds the actual rules.
 */
import type { Keys } from "../keys.ts";
import { TERMINAL_STATES } from "../schema.ts";
import {
  type DecideContext,
  decideContext,
  decideTask,
  isFull,
} from "./decide.ts";
import type { Effect } from "./effects.ts";
import { claimSteals, ownQueue } from "./steal.ts";
import { txnCommitted, writtenAt } from "./txn_outcome.ts";
import { localBusy, prepareFailing, selfHealth } from "./filter.ts";
import type { KeyChange, NodeEvent } from "./events.ts";
import type { NodeView } from "./view.ts";
import { decideProvisioning, onProvisionEvent } from "./provision.ts";
import { decideRetire } from "./retire.ts";
import { committedEvents, emit, watchedEvents } from "./hook_events.ts";

/** Re-decides the given tasks in order, sharing one membership snapshot. */
export function decideTasks(
  view: NodeView,
  keys: Keys,
  taskIds: Iterable<string>,
  at: number,
): Effect[] {
  const ctx = decideContext(view, keys, at);
  const out: Effect[] = [];
  for (const id of taskIds) out.push(...decideTask(view, id, ctx));
  out.push(...claimSteals(view, ctx));
  return out;
}

/** Every task that can still change, plus every task with a local worker. */
export function activeTasks(view: NodeView): string[] {
  const ids = [...view.open];
  for (const id of view.workers.keys()) if (!view.open.has(id)) ids.push(id);
  return ids;
}

/** Nodes or capabilities changed: HRW ranks and candidates may differ for every task. */
export function onMembershipChange(
  view: NodeView,
  keys: Keys,
  at: number,
): Effect[] {
  return decideTasks(view, keys, activeTasks(view), at);
}

/** Envelopes changed (queued, unblocked, finished): decide them and their dependents. */
export function onTaskQueued(
  view: NodeView,
  keys: Keys,
  taskIds: Iterable<string>,
  at: number,
): Effect[] {
  return decideTasks(view, keys, withDependents(view, taskIds), at);
}

/** The tasks plus the BLOCKED tasks waiting on any of them that ended. */
function withDependents(
  view: NodeView,
  taskIds: Iterable<string>,
): Set<string> {
  const ids = new Set<string>();
  for (const id of taskIds) {
    ids.add(id);
    const t = view.tasks.get(id)?.value;
    if (t && TERMINAL_STATES.has(t.state)) {
      for (const other of view.dependents.get(id) ?? []) {
        if (view.tasks.get(other)?.value.state === "BLOCKED") ids.add(other);
      }
    }
  }
  return ids;
}

/**
 * Our own write landed or lost. A lost claim frees its slot: the next
 * PENDING tasks are claimed now rather than at the next tick.
 */
export function onTxnDone(
  view: NodeView,
  keys: Keys,
  ev: Extract<NodeEvent, { type: "txn_done" }>,
): Effect[] {
  const ids = withDependents(view, [ev.effect.task_id]);
  const ctx = decideContext(view, keys, ev.at);
  // Its events first: they reach the audit WAL before any follow-up effect
  // runs. A compare that failed only because the transaction had already
  // committed (its answer lost, the client asked another member) is a
  // commit too, and owes its events once: at the revision its writes carry.
  const out: Effect[] = txnCommitted(ev)
    ? committedEvents(keys, ev.effect, ev.ok ? ev.revision : writtenAt(ev))
    : [];
  if (ev.effect.on_commit && txnCommitted(ev)) out.push(ev.effect.on_commit);
  for (const id of ids) out.push(...decideTask(view, id, ctx));
  if (ev.effect.reason === "claim" && !txnCommitted(ev)) {
    fillSlots(view, ctx, ids, out);
  }
  out.push(...claimSteals(view, ctx));
  return out;
}

/** How many PENDING tasks a freed slot looks at; the sweep sees the rest. */
const FILL_SCAN = 256;

/**
 * Claims PENDING tasks into free slots: our own, oldest first, while we have
 * any (steal.ts's queue of them: on 9 nodes the oldest PENDING tasks are
 * mostly other nodes', and deciding 256 of them on every worker exit was 6-12 %
 * of a node's active CPU in a profile); else the oldest of all, for
 * spill-over. Stops once full or after FILL_SCAN tasks: this runs on every
 * worker exit.
 */
function fillSlots(
  view: NodeView,
  ctx: DecideContext,
  decided: ReadonlySet<string>,
  out: Effect[],
): void {
  const own = ownQueue(view, ctx);
  if (own !== null) {
    const end = Math.min(own.queue.length, own.head + FILL_SCAN);
    for (let i = own.head; i < end && !isFull(ctx); i++) {
      const id = own.queue[i];
      if (!decided.has(id) && !view.inflight.has(id)) {
        out.push(...decideTask(view, id, ctx));
      }
    }
    return;
  }
  let scanned = 0;
  for (const id of view.pending) {
    if (isFull(ctx) || ++scanned > FILL_SCAN) break;
    if (!decided.has(id)) out.push(...decideTask(view, id, ctx));
  }
}

/** Claims vanished (lease expiry or release): the monitor may have to re-queue. */
export function onLeaseExpired(
  view: NodeView,
  keys: Keys,
  taskIds: Iterable<string>,
  at: number,
): Effect[] {
  return decideTasks(view, keys, taskIds, at);
}

/**
 * A local worker ended: commit its result under the fence, or refuse it;
 * its slot is free now, so the next PENDING task is claimed at once.
 */
export function onWorkerExit(
  view: NodeView,
  keys: Keys,
  taskId: string,
  at: number,
): Effect[] {
  const ctx = decideContext(view, keys, at);
  const out = decideTask(view, taskId, ctx);
  fillSlots(view, ctx, new Set([taskId]), out);
  out.push(...claimSteals(view, ctx));
  return out;
}

/**
 * A plugin crashed, went unhealthy or came back (SPEC §7): the node's own
 * health changes (a degraded node is no candidate), so say so and re-decide.
 */
export function onPluginCrash(
  view: NodeView,
  keys: Keys,
  at: number,
): Effect[] {
  return [
    ...healthChange(view, at),
    ...decideTasks(view, keys, activeTasks(view), at),
  ];
}

/**
 * The tick: this node's workers (RUNNING due, a prepared one waiting for its
 * lease) and the oldest PENDING tasks (spill-over deadlines, retry backoff,
 * free slots); every `sweep_every_ms` the periodic sweep re-decides every
 * open task, for anything an event missed. Health changes.
 */
export function onTick(view: NodeView, keys: Keys, at: number): Effect[] {
  return [
    ...healthChange(view, at),
    ...decideTasks(
      view,
      keys,
      view.sweep_now ? activeTasks(view) : timedTasks(view),
      at,
    ),
    ...decideProvisioning(view, keys, at),
    ...decideRetire(view, keys, at),
  ];
}

/**
 * What time alone can change between sweeps: our workers, and while a slot
 * is free the oldest FILL_SCAN PENDING tasks (bounded, as when a slot frees:
 * a backlog that belongs to other nodes would otherwise be re-ranked on
 * every tick; a full node claims nothing, and the sweep sees the rest).
 */
function timedTasks(view: NodeView): Set<string> {
  const ids = new Set(view.workers.keys());
  if (localBusy(view) >= view.config.workers_max) return ids;
  let scanned = 0;
  for (const id of view.pending) {
    if (++scanned > FILL_SCAN) break;
    ids.add(id);
  }
  return ids;
}

/** The node's health changed since it last said so: announce it once. */
function healthChange(view: NodeView, at: number): Effect[] {
  // Unregistered (starting up, or between leases) the node announces
  // nothing: its first caps record carries its health.
  if (view.lease_id === null) return [];
  const now = selfHealth(view, at);
  if (now === view.reported_health) return [];
  const event = now === "degraded" ? "node.degraded" : "node.healed";
  const reason = !view.plugins_healthy
    ? "a plugin is not ready"
    : prepareFailing(view, at)
    ? "workspace Prepare failing"
    : "claim-failure cooldown";
  return [
    {
      kind: "log",
      level: "warn",
      msg: event,
      fields: {
        reason: now === "degraded" ? reason : "recovered",
        expiries: view.claim_expiries,
        prepare_failures: view.prepare_failures,
      },
    },
    now === "degraded"
      ? emit("node.degraded", { node_id: view.config.node_id, reason })
      : emit("node.healed", { node_id: view.config.node_id }),
  ];
}

/** Workers whose workspace is ready and that wait for a live lease to start. */
function preparedTasks(view: NodeView): string[] {
  const ids: string[] = [];
  for (const w of view.workers.values()) {
    if (w.phase === "prepared") ids.push(w.task_id);
  }
  return ids;
}

/**
 * SPEC §8 back-pressure: a stall is reported once; on resume the results
 * that waited are committed in the order their workers finished, then the
 * rest is re-decided (claims included).
 */
export function onHooksBackpressure(
  view: NodeView,
  keys: Keys,
  ev: Extract<NodeEvent, { type: "hooks_backpressure" }>,
): Effect[] {
  if (ev.stalled) {
    return [emit("hook.queue.saturated", {
      plugin: ev.plugin,
      unacked: ev.unacked,
      window: ev.window,
    })];
  }
  const finished = [...view.workers.values()]
    .filter((w) => w.result !== null)
    .sort((a, b) => a.result!.finished_at - b.result!.finished_at)
    .map((w) => w.task_id);
  return decideTasks(
    view,
    keys,
    new Set([...finished, ...activeTasks(view)]),
    ev.at,
  );
}

/**
 * Routes an already-applied event to its handler. Writes of ours the event
 * showed landed (unsure.ts) owe their events first, before any follow-up.
 */
export function handle(view: NodeView, keys: Keys, ev: NodeEvent): Effect[] {
  const out = route(view, keys, ev);
  if (view.landed.length === 0) return out;
  return [
    ...view.landed.flatMap((l) => committedEvents(keys, l.effect, l.revision)),
    ...out,
  ];
}

function route(view: NodeView, keys: Keys, ev: NodeEvent): Effect[] {
  switch (ev.type) {
    case "changes":
      return [
        ...watchedEvents(view, keys, ev.changes),
        ...onChanges(view, keys, ev.changes, ev.at),
      ];
    case "plugins_health":
      return onPluginCrash(view, keys, ev.at);
    case "lease_granted":
      return [
        emit("node.joined", {
          node_id: view.config.node_id,
          lease_id: ev.lease_id,
        }),
        ...onMembershipChange(view, keys, ev.at),
      ];
    case "hooks_backpressure":
      return onHooksBackpressure(view, keys, ev);
    case "relist":
    case "lease_lost":
      return onMembershipChange(view, keys, ev.at);
    case "tick":
      return onTick(view, keys, ev.at);
    case "txn_done":
      return onTxnDone(view, keys, ev);
    case "lease_renewed":
      return decideTasks(view, keys, preparedTasks(view), ev.at);
    case "worker_prepared":
    case "worker_started":
    case "kill_failed":
      return decideTasks(view, keys, [ev.task_id], ev.at);
    case "worker_exit":
      return onWorkerExit(view, keys, ev.task_id, ev.at);
    case "result_flushed":
    case "flush_resolved":
      return decideTasks(view, keys, [ev.task_id], ev.at);
    case "provision":
      return onProvisionEvent(view, keys, ev);
    case "route_advice":
      return decideTasks(view, keys, [ev.task_id], ev.at);
  }
}

function onChanges(
  view: NodeView,
  keys: Keys,
  changes: KeyChange[],
  at: number,
): Effect[] {
  let membership = false;
  let capacity = false;
  const queued = new Set<string>();
  const expired = new Set<string>();
  for (const c of changes) {
    const p = keys.parse(c.key);
    if (!p) continue;
    switch (p.collection) {
      case "nodes":
      case "cluster":
        membership = true;
        break;
      case "caps":
        // A caps record that appears or goes changes who is a member (HRW
        // monitors); an update (busy, health, caps) changes only who can
        // take PENDING work. Every node publishes one about once a second.
        if (c.kv === null || c.kv.create_revision === c.kv.mod_revision) {
          membership = true;
        } else capacity = true;
        break;
      case "dispatch-queue":
        queued.add(p.id);
        break;
      case "claims":
        (c.kv === null ? expired : queued).add(p.id);
        break;
      case "specs":
        for (const id of view.spec_tasks.get(p.id) ?? []) queued.add(id);
        break;
    }
  }
  if (membership) return onMembershipChange(view, keys, at);
  if (capacity) {
    // One batch, one context: its claims count against the free slots once.
    const ids = withDependents(view, queued);
    for (const id of expired) ids.add(id);
    for (const id of timedTasks(view)) ids.add(id);
    return decideTasks(view, keys, ids, at);
  }
  return [
    ...onTaskQueued(view, keys, queued, at),
    ...onLeaseExpired(
      view,
      keys,
      [...expired].filter((id) => !queued.has(id)),
      at,
    ),
  ];
}
