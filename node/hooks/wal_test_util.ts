/** WAL entries and found segments for the audit tier's tests. */
import { dedupKey, type WalEntry } from "./wal_state.ts";
import type { FoundSegment } from "./wal_recover.ts";

/** The entry `seq` of node "n": a task.claimed at ts 1000 + seq. */
export function entry(seq: number): WalEntry {
  return {
    seq,
    kind: "task.claimed",
    ts: 1000 + seq,
    payload_json: "{}",
    dedup_key: dedupKey("n", seq, "task.claimed", 1000 + seq),
  };
}

/** A segment as load() would find it, holding `seqs`. */
export function seg(
  first: number,
  last: number | null,
  seqs: number[],
): FoundSegment {
  return { info: { first, last }, entries: seqs.map(entry), corrupt: 0 };
}

/** a, a + 1, …, b. */
export const range = (a: number, b: number): number[] =>
  Array.from({ length: b - a + 1 }, (_, i) => a + i);
