/**
 * Our own writes whose answer was an error rather than a verdict (grpc
 * CANCELLED or INTERNAL after the request left, an answer that did not
 * decode; an outage's finish goes to the pending flush instead, whose replay
 * decides it): the transaction may have committed. The view tells: once it
 * holds the envelope the write put, the write landed. Its events are owed
 * once, and a finish retires its worker. Before, that worker found its claim
 * gone (deleted by its own finish), so the node reported its own result
 * superseded and never sent task.completed: the simulator's `error_replies`
 * knob failed 133 of 1,000 schedules on it.
 */
import type { Keys } from "../keys.ts";
import type { Envelope } from "../schema.ts";
import type { TxnEffect } from "./effects.ts";
import type { MutableView } from "./view.ts";

/** A write of ours with no verdict yet, and the envelope it put. */
export interface Unsure {
  readonly effect: TxnEffect;
  readonly written: Envelope;
}

/** A write of ours the view showed committed, at the envelope's revision. */
export interface Landed {
  readonly effect: TxnEffect;
  readonly revision: number;
}

/** A write answered with an error: remembered until the view says whether it landed. */
export function noteUnsure(view: MutableView, keys: Keys, e: TxnEffect): void {
  const key = keys.task(e.task_id);
  const put = e.success.find((op) => op.op === "put" && op.key === key);
  if (put?.op !== "put") return;
  // Parked in the pending flush: its replay decides (flush_replay.ts).
  if (e.reason === "finish" && view.flushed.has(e.task_id)) return;
  view.unsure.set(e.task_id, {
    effect: e,
    written: JSON.parse(put.value) as Envelope,
  });
  // The watch may have shown the commit before the error arrived.
  if (matches(view, e.task_id)) land(view, e.task_id);
}

/**
 * The view took changes of these tasks: a remembered write it now shows
 * landed; one whose envelope changed to something else did not (the first
 * change after the compared revision is the write that won it).
 */
export function settleUnsure(view: MutableView, ids: Iterable<string>): void {
  if (view.unsure.size === 0) return;
  for (const id of ids) {
    if (!view.unsure.has(id)) continue;
    if (matches(view, id)) land(view, id);
    else view.unsure.delete(id);
  }
}

function matches(view: MutableView, id: string): boolean {
  const t = view.tasks.get(id);
  const u = view.unsure.get(id);
  return t !== undefined && u !== undefined && sameJson(t.value, u.written);
}

function land(view: MutableView, id: string): void {
  const u = view.unsure.get(id)!;
  view.unsure.delete(id);
  view.landed.push({
    effect: u.effect,
    revision: view.tasks.get(id)!.mod_revision,
  });
  if (u.effect.reason !== "finish") return;
  // A committed result retires its worker, as a commit answered ok does.
  const fence = u.effect.compare.find((c) => c.target === "create")?.equals;
  const w = view.workers.get(id);
  if (w !== undefined && w.fence === fence) view.workers.delete(id);
}

/** JSON values equal regardless of key order (the view's record may come through zod). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || !a || !b) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ob = b as Record<string, unknown>;
  const oa = a as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(ob, k) && sameJson(oa[k], ob[k]));
}
