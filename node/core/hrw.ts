/**
 * Rendezvous (highest-random-weight) hashing, SPEC §5.3: every node computes
 * the same ranking for a task from the same membership, with no coordination.
 */
import { sha256Prefix64 } from "./sha256.ts";

// Scores are a pure function of their inputs, so memoizing them is safe; the
// periodic sweep re-ranks every open task, and hashing dominates that cost.
// Keyed by task, then node: no key string is built per lookup.
const memo = new Map<string, Map<string, bigint>>();
const MEMO_MAX_TASKS = 100_000;

/** First 8 bytes, big-endian unsigned, of SHA-256(task_id ‖ 0x1F ‖ node_id). */
export function hrwScore(taskId: string, nodeId: string): bigint {
  let scores = memo.get(taskId);
  if (scores === undefined) {
    if (memo.size >= MEMO_MAX_TASKS) memo.clear();
    memo.set(taskId, scores = new Map());
  }
  let score = scores.get(nodeId);
  if (score === undefined) {
    score = computeScore(taskId, nodeId);
    scores.set(nodeId, score);
  }
  return score;
}

/**
 * Drops a task's scores once it has ended: nothing ranks a finished task
 * again, and a long-running node would otherwise hold ~380 bytes for every
 * task it saw, up to MEMO_MAX_TASKS (about 38 MiB), between clears.
 */
export function hrwForget(taskId: string): void {
  memo.delete(taskId);
}

function computeScore(taskId: string, nodeId: string): bigint {
  return sha256Prefix64(`${taskId}\x1f${nodeId}`);
}

/** Node ids ordered best first: score descending, ties by node_id ascending. */
export function hrwRank(taskId: string, nodeIds: Iterable<string>): string[] {
  const scored = [...nodeIds].map((id) => ({ id, s: hrwScore(taskId, id) }));
  scored.sort((a, b) =>
    a.s === b.s ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.s > b.s ? -1 : 1
  );
  return scored.map((x) => x.id);
}

/** True if node `a` ranks before node `b` for the task (the order of {@linkcode hrwRank}). */
export function hrwBefore(taskId: string, a: string, b: string): boolean {
  const sa = hrwScore(taskId, a);
  const sb = hrwScore(taskId, b);
  return sa === sb ? a < b : sa > sb;
}

/** The first node of {@linkcode hrwRank}; undefined for none. */
export function hrwWinner(
  taskId: string,
  nodeIds: Iterable<string>,
): string | undefined {
  let best: string | undefined;
  for (const id of nodeIds) {
    if (best === undefined || hrwBefore(taskId, id, best)) best = id;
  }
  return best;
}
