/**
 * Taking other nodes' tasks (spill-over, SPEC §5.5, or an owner that looked
 * full): when, which and how many. Correctness never depends on it — a
 * claim is a transaction — but every lost race costs a transaction, its
 * read-back and a re-decision on both sides.
 */
import type { Envelope } from "../schema.ts";
import type { Effect } from "./effects.ts";
import { hrwScoreOrder } from "./hrw.ts";
import { routed, routedOwner } from "./routing.ts";
import { capableFor, type DecideContext, isFull } from "./decide_context.ts";
import { claimTxn } from "./txns.ts";
import { failedHere } from "./filter.ts";
import type { NodeView, Versioned } from "./view.ts";

/**
 * Per view: this node's own PENDING tasks in queue order as the last scan
 * found them, and how far they have been taken (each entry is re-checked at
 * use, so the memo only saves scans); or until when a scan that found none
 * holds. A memo, not state: it changes how often the backlog is scanned,
 * and whether a steal waits for at most BACKLOG_NONE_MS.
 */
interface BacklogMemo {
  queue: string[];
  head: number;
  noneUntil: number;
}
const backlogMemo = new WeakMap<NodeView, BacklogMemo>();

/** How long "no own backlog" holds before the next full scan. */
const BACKLOG_NONE_MS = 250;

/**
 * Whether any PENDING task is ours by HRW, our claim of it in flight or not
 * (memoized per batch): a node with work of its own must not take another
 * node's, or it races that task's owner. The whole backlog counts, not its
 * oldest part: the owners drain the oldest tasks at different speeds, so a
 * fast node's own tasks are the newer ones, and probing only the oldest 64
 * made such a node steal mid-run from the slow owners' heads — measured on
 * 9 nodes, 3,000 noop tasks: 5.1 failed claims per task, 39 % of the tasks
 * taken by a stealer while it still had 50-250 own tasks queued. The scan
 * is O(backlog) only once every task the last one found is taken.
 */
export function hasOwnBacklog(view: NodeView, ctx: DecideContext): boolean {
  if (ctx.ownBacklog !== undefined) return ctx.ownBacklog;
  return ctx.ownBacklog = ownQueue(view, ctx) !== null;
}

/**
 * Our own PENDING tasks, oldest first from `head` (some may have been taken
 * since: re-check each), or null when we have none. New ones queued after
 * the scan are not in it: they were decided when they came, and the next
 * scan, once these are taken, finds the rest.
 */
export function ownQueue(
  view: NodeView,
  ctx: DecideContext,
): BacklogMemo | null {
  let memo = backlogMemo.get(view);
  if (memo === undefined) {
    backlogMemo.set(view, memo = { queue: [], head: 0, noneUntil: -Infinity });
  }
  const q = memo.queue;
  while (memo.head < q.length && !isOwnPending(view, ctx, q[memo.head])) {
    memo.head++;
  }
  if (memo.head < q.length) return memo;
  if (ctx.at < memo.noneUntil) return null;
  const found: string[] = [];
  for (const id of view.pending) {
    if (isOwnPending(view, ctx, id)) found.push(id);
  }
  memo.queue = found;
  memo.head = 0;
  if (found.length > 0) return memo;
  memo.noneUntil = ctx.at + BACKLOG_NONE_MS;
  return null;
}

/** A PENDING task, ours by HRW, that we may still claim (or whose claim of ours flies). */
function isOwnPending(
  view: NodeView,
  ctx: DecideContext,
  id: string,
): boolean {
  if (!view.pending.has(id) || view.claims.has(id) || failedHere(view, id)) {
    return false;
  }
  const t = view.tasks.get(id)?.value;
  if (
    !t || !view.specs.has(t.spec_id) ||
    (t.not_before !== null && ctx.at < t.not_before)
  ) return false;
  const r = routed(view, t, capableFor(ctx, t.requires));
  return r.step === "decide" && routedOwner(id, r) === view.config.node_id;
}

/** At most this many other nodes' tasks are claimed per batch. */
const STEALS_PER_BATCH = 16;

/**
 * A stealable task waiting this many spill delays is taken oldest first;
 * younger ones by this node's own HRW score (see `claimSteals`).
 */
const STEAL_AGE_SPILLS = 10;

/**
 * Claims the batch's stealable tasks once its own claims are counted: by
 * this node's HRW score for each (highest first), not oldest first, and at
 * most STEALS_PER_BATCH. Every idle node used to take the same oldest tasks
 * — the ones their owners were claiming too — with a claim per free slot
 * (128 in the bench): 3.0 / 5.0 failed claim transactions per task on 6 / 9
 * nodes. Each node's score order is its own, so two stealers rarely pick
 * the same task. A task that has waited STEAL_AGE_SPILLS spill delays goes
 * first, oldest first: a low score everywhere must not starve it.
 */
export function claimSteals(view: NodeView, ctx: DecideContext): Effect[] {
  const steals = ctx.steals;
  if (
    steals.length === 0 || view.lease_id === null ||
    ctx.at >= view.lease_valid_until
  ) return [];
  const self = view.config.node_id;
  const aged = ctx.at - STEAL_AGE_SPILLS * view.config.spill_after_ms;
  const since = (t: Versioned<Envelope>) =>
    view.pending_since.get(t.value.task_id)?.at ?? ctx.at;
  steals.sort((a, b) => {
    const sa = since(a), sb = since(b);
    const oa = sa <= aged, ob = sb <= aged;
    if (oa !== ob) return oa ? -1 : 1;
    if (oa) return sa - sb;
    return hrwScoreOrder(a.value.task_id, b.value.task_id, self);
  });
  const out: Effect[] = [];
  for (const t of steals) {
    if (isFull(ctx) || out.length >= STEALS_PER_BATCH) break;
    ctx.claimed++;
    out.push(claimTxn(ctx.keys, t, self, view.lease_id, ctx.at));
  }
  steals.length = 0;
  return out;
}
