/**
 * Prepare ahead: the workspace Prepare of a task this node is claiming starts
 * while the claim's transaction is still in flight, instead of one etcd round
 * trip later. The core does not see it: it still emits `prepare` only once
 * the claim committed, gets `worker_prepared` only after that, and decides
 * `spawn` from the view at that moment (node/core/worker_decide.ts). A
 * prepared workspace is not a started command, so nothing runs before the
 * claim is ours; a claim that does not lead to `prepare` (compare failed,
 * etcd unreachable, cancelled meanwhile) has its workspace cleaned up.
 * @module
 */
import type { Effect, NodeEvent, NodeView } from "../core/mod.ts";
import type { PrepareResponse } from "../exec/contracts.ts";

/** A speculative Prepare: its spec (for the cleanup) and its answer. */
interface Ahead {
  spec_id: string;
  result: Promise<PrepareResponse>;
}

/** What {@linkcode PrepareAhead} needs from the worker runner. */
export interface PrepareAheadDeps {
  /** Starts the workspace Prepare of the task (after any cleanup of the same task). */
  prepare(specId: string, taskId: string): Promise<PrepareResponse>;
  /**
   * Removes a workspace nobody will use once its Prepare answers (nothing if
   * it failed); a later Prepare of the task waits for it (same directory).
   */
  cleanup(specId: string, taskId: string, workdir: Promise<string>): void;
}

/** Prepares started before their claim committed, by task; see the module doc. */
export class PrepareAhead {
  readonly #ahead = new Map<string, Ahead>();

  constructor(readonly deps: PrepareAheadDeps) {}

  /** Speculative Prepares not yet taken or dropped (tests, diagnostics). */
  get size(): number {
    return this.#ahead.size;
  }

  /** The claim of `taskId` is being sent: start its Prepare now. */
  start(specId: string, taskId: string): void {
    if (this.#ahead.has(taskId)) return;
    const result = this.deps.prepare(specId, taskId);
    result.catch(() => {}); // its taker sees the failure; a dropped one has nothing to clean
    this.#ahead.set(taskId, { spec_id: specId, result });
  }

  /** The core emitted `prepare` for the task: the answer, if it was started ahead. */
  take(taskId: string): Promise<PrepareResponse> | undefined {
    const a = this.#ahead.get(taskId);
    this.#ahead.delete(taskId);
    return a?.result;
  }

  /**
   * The node stops: it decides nothing more, so no claim still in flight
   * gets its `prepare`; every workspace prepared ahead and not taken goes.
   */
  dropAll(): void {
    for (const id of [...this.#ahead.keys()]) this.drop(id);
  }

  /** The claim's outcome was decided without a `prepare`: the workspace goes. */
  drop(taskId: string): void {
    const a = this.#ahead.get(taskId);
    if (!a) return;
    this.#ahead.delete(taskId);
    this.deps.cleanup(a.spec_id, taskId, a.result.then((ws) => ws.workdir));
  }
}

/**
 * The task whose speculative Prepare nobody will take: `ev` answered its
 * claim and the core's `effects` for it hold no `prepare` of it (an earlier
 * event may have taken it already: then dropping finds nothing).
 */
export function unpreparedClaim(
  ev: NodeEvent,
  effects: readonly Effect[],
): string | null {
  if (ev.type !== "txn_done" || ev.effect.reason !== "claim") return null;
  const id = ev.effect.task_id;
  return effects.some((e) => e.kind === "prepare" && e.task_id === id)
    ? null
    : id;
}

/**
 * The spec of the task whose claim `e` is, when its workspace should be
 * prepared ahead: only while etcd is known up (each claim retry would cost a
 * Prepare and a Cleanup) and only for a claim that flies alone. A node with
 * several claims in flight is busy: overlapping saves no waiting on a
 * saturated machine (measured, docs/architecture.md), and a claim lost to
 * another node would cost a Prepare and a Cleanup for nothing.
 */
export function aheadSpec(
  view: NodeView,
  e: Effect,
  etcdUp: boolean,
): string | undefined {
  if (e.kind !== "txn" || e.reason !== "claim" || !etcdUp) return undefined;
  let claims = 0;
  for (const reason of view.inflight.values()) {
    if (reason === "claim" && ++claims > 1) return undefined;
  }
  return view.tasks.get(e.task_id)?.value.spec_id;
}
