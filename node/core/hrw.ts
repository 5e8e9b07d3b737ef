/**
 * Rendezvous (highest-random-weight) hashing, SPEC §5.3: every node computes
 * the same ranking for a task from the same membership, with no coordination.
 */
import { sha256Prefix53, sha256Prefix64 } from "./sha256.ts";

// Scores are a pure function of their inputs, so memoizing them is safe; the
// periodic sweep re-ranks every open task, and hashing dominates that cost.
// Keyed by task, then node: no key string is built per lookup. A memoized
// score is the top 53 bits of the SPEC's 64 (a number compares without a
// BigInt); two that are equal there are ordered by their full 64 bits,
// computed again (`exactBefore`; one pair of a task's in about 2^53).
const memo = new Map<string, Map<string, number>>();
const MEMO_MAX_TASKS = 100_000;

/** First 8 bytes, big-endian unsigned, of SHA-256(task_id ‖ 0x1F ‖ node_id). */
export function hrwScore(taskId: string, nodeId: string): bigint {
  return sha256Prefix64(`${taskId}\x1f${nodeId}`);
}

// The last task looked up: a decision asks for one task's scores several
// times in a row (routing.ts's routedOwner compares each capable node with the best).
let lastTask: string | null = null;
let lastScores: Map<string, number> = new Map();

/** The memoized scores of a task's nodes. */
function scoresOf(taskId: string): Map<string, number> {
  if (taskId === lastTask) return lastScores;
  let scores = memo.get(taskId);
  if (scores === undefined) {
    if (memo.size >= MEMO_MAX_TASKS) memo.clear();
    memo.set(taskId, scores = new Map());
  }
  lastTask = taskId;
  return lastScores = scores;
}

/** The top 53 bits of {@linkcode hrwScore}, memoized in `scores` (the task's). */
function score53(
  scores: Map<string, number>,
  taskId: string,
  nodeId: string,
): number {
  let s = scores.get(nodeId);
  if (s === undefined) {
    s = sha256Prefix53(`${taskId}\x1f${nodeId}`);
    scores.set(nodeId, s);
  }
  return s;
}

/** `a` before `b` by full scores, ties by node_id ascending: when their top 53 bits tie. */
function exactBefore(taskId: string, a: string, b: string): boolean {
  const sa = hrwScore(taskId, a);
  const sb = hrwScore(taskId, b);
  return sa === sb ? a < b : sa > sb;
}

/**
 * Drops a task's scores once it has ended: nothing ranks a finished task
 * again, and a long-running node would otherwise hold ~380 bytes for every
 * task it saw, up to MEMO_MAX_TASKS (about 38 MiB), between clears.
 */
export function hrwForget(taskId: string): void {
  memo.delete(taskId);
  if (taskId === lastTask) lastTask = null;
}

/** Node ids ordered best first: score descending, ties by node_id ascending. */
export function hrwRank(taskId: string, nodeIds: Iterable<string>): string[] {
  return [...nodeIds].sort((a, b) =>
    a === b ? 0 : hrwBefore(taskId, a, b) ? -1 : 1
  );
}

/** True if node `a` ranks before node `b` for the task (the order of {@linkcode hrwRank}). */
export function hrwBefore(taskId: string, a: string, b: string): boolean {
  const scores = scoresOf(taskId);
  const sa = score53(scores, taskId, a);
  const sb = score53(scores, taskId, b);
  return sa === sb ? exactBefore(taskId, a, b) : sa > sb;
}

/** The first node of {@linkcode hrwRank}; undefined for none. */
export function hrwWinner(
  taskId: string,
  nodeIds: Iterable<string>,
): string | undefined {
  const scores = scoresOf(taskId);
  let best: string | undefined;
  let bestScore = -1;
  for (const id of nodeIds) {
    const s = score53(scores, taskId, id);
    if (
      best === undefined || s > bestScore ||
      (s === bestScore && exactBefore(taskId, id, best))
    ) {
      best = id;
      bestScore = s;
    }
  }
  return best;
}

/**
 * The winner among the nodes that take work (not draining): steal.ts's
 * owner of a PENDING task, asked for every PENDING task a node sees. The
 * task's scores are looked up once, the best kept.
 */
export function hrwOwner(
  taskId: string,
  nodes: readonly { readonly node_id: string; readonly draining: boolean }[],
): string | undefined {
  const scores = scoresOf(taskId);
  let best: string | undefined;
  let bestScore = -1;
  for (const n of nodes) {
    if (n.draining) continue;
    const s = score53(scores, taskId, n.node_id);
    if (
      best === undefined || s > bestScore ||
      (s === bestScore && exactBefore(taskId, n.node_id, best))
    ) {
      best = n.node_id;
      bestScore = s;
    }
  }
  return best;
}

/**
 * Orders two tasks by one node's score for each, highest first (0 when the
 * scores are equal): how a node ranks the tasks it may steal (steal.ts).
 */
export function hrwScoreOrder(a: string, b: string, nodeId: string): number {
  const sa = score53(scoresOf(a), a, nodeId);
  const sb = score53(scoresOf(b), b, nodeId);
  if (sa !== sb) return sa > sb ? -1 : 1;
  const ea = hrwScore(a, nodeId), eb = hrwScore(b, nodeId);
  return ea === eb ? 0 : ea > eb ? -1 : 1;
}
