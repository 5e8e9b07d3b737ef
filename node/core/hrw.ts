/**
 * Rendezvous (highest-random-weight) hashing, SPEC §5.3: every node computes
 * the same ranking for a task from the same membership, with no coordination.
 */
import { createHash } from "node:crypto";

const SEP = new Uint8Array([0x1f]);
const encoder = new TextEncoder();

// Scores are a pure function of their inputs, so memoizing them is safe; the
// periodic sweep re-ranks every open task, and hashing dominates that cost.
const memo = new Map<string, bigint>();
const MEMO_MAX = 200_000;

/** First 8 bytes, big-endian unsigned, of SHA-256(task_id ‖ 0x1F ‖ node_id). */
export function hrwScore(taskId: string, nodeId: string): bigint {
  const key = taskId + "\x1f" + nodeId;
  const hit = memo.get(key);
  if (hit !== undefined) return hit;
  if (memo.size >= MEMO_MAX) memo.clear();
  const score = computeScore(taskId, nodeId);
  memo.set(key, score);
  return score;
}

function computeScore(taskId: string, nodeId: string): bigint {
  const digest = createHash("sha256")
    .update(encoder.encode(taskId))
    .update(SEP)
    .update(encoder.encode(nodeId))
    .digest();
  return new DataView(digest.buffer, digest.byteOffset, 8).getBigUint64(0);
}

/** Node ids ordered best first: score descending, ties by node_id ascending. */
export function hrwRank(taskId: string, nodeIds: Iterable<string>): string[] {
  const scored = [...nodeIds].map((id) => ({ id, s: hrwScore(taskId, id) }));
  scored.sort((a, b) =>
    a.s === b.s ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.s > b.s ? -1 : 1
  );
  return scored.map((x) => x.id);
}
