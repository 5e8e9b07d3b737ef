/**
 * The audit tier's state rebuilt at start (SPEC §8) from the stored HWM and
 * the WAL files found, pure: what to replay, which seq ranges are lost (and
 * stepped over by the ack), which intents are still open.
 * @module
 */
import { fillWritten } from "./wal_intents.ts";
import {
  ackable,
  type AuditState,
  emptyAudit,
  type Intent,
  type SegmentInfo,
  type WalEntry,
} from "./wal_state.ts";

/** A range of seqs known to be lost. */
export interface Gap {
  from_seq: number;
  /** null: the end is unknown. */
  to_seq: number | null;
  reason: string;
}

/** One WAL file as found at start: its segment info and the entries that parsed. */
export interface FoundSegment {
  info: SegmentInfo;
  entries: WalEntry[];
  /** Lines that did not parse, other than a torn last line. */
  corrupt: number;
  /** Intents written in it, and ids resolved in it. */
  intents?: Intent[];
  resolved?: number[];
}

/**
 * Rebuilds the state from the HWM (0: none stored) and the WAL files found
 * (sealed ones and the active one; `active` null if it is missing), and
 * names every seq range that should be there and is not.
 */
export function recover(
  hwm: number,
  sealed: FoundSegment[],
  active: FoundSegment | null,
): { state: AuditState; gaps: Gap[] } {
  const bySeq = new Map<number, WalEntry>();
  let known = hwm;
  const all = [...sealed, ...(active ? [active] : [])];
  for (const seg of all) {
    for (const e of seg.entries) {
      bySeq.set(e.seq, e);
      known = Math.max(known, e.seq);
    }
    known = Math.max(known, seg.info.last ?? seg.info.first - 1);
  }
  const gaps: Gap[] = [];
  const lost: { from: number; to: number }[] = [];
  let runStart: number | null = null;
  for (let seq = hwm + 1; seq <= known + 1; seq++) {
    const missing = seq <= known && !bySeq.has(seq);
    if (missing && runStart === null) runStart = seq;
    if (!missing && runStart !== null) {
      gaps.push({
        from_seq: runStart,
        to_seq: seq - 1,
        reason: "wal truncated",
      });
      lost.push({ from: runStart, to: seq - 1 });
      runStart = null;
    }
  }
  if (active === null && (hwm > 0 || sealed.length > 0)) {
    // The active segment is never deleted: without it we cannot tell how far it went.
    gaps.push({ from_seq: known + 1, to_seq: null, reason: "wal missing" });
  }
  const state = emptyAudit(hwm);
  const resolved = new Set(all.flatMap((seg) => seg.resolved ?? []));
  for (const seg of all) {
    for (const i of seg.intents ?? []) {
      state.next_intent = Math.max(state.next_intent, i.id + 1);
      if (!resolved.has(i.id)) state.intents.set(i.id, { ...i });
    }
  }
  fillWritten(state, bySeq);
  state.next_seq = known + 1;
  state.durable = known;
  state.unacked = [...bySeq.values()].filter((e) => e.seq > hwm)
    .sort((a, b) => a.seq - b.seq);
  state.lost = lost;
  // Lost right after the HWM (the HWM key was lost and old segments are
  // gone): nothing to wait for, the ack moves past them at once.
  state.acked = ackable(state, new Set());
  while (state.lost.length > 0 && state.lost[0].to <= state.acked) {
    state.lost.shift();
  }
  // Covered by the HWM, but holding an open intent's line or its events:
  // kept (and tracked, so retirable() deletes it once the intent closes).
  let oldestIntent = Infinity;
  for (const i of state.intents.values()) {
    oldestIntent = Math.min(oldestIntent, i.at_seq);
  }
  state.sealed = sealed.map((s) => s.info)
    .filter((i) => i.last! > hwm || i.last! >= oldestIntent)
    .sort((a, b) => a.first - b.first);
  state.active_first = active ? active.info.first : known + 1;
  state.active_count = active ? active.entries.length : 0;
  return { state, gaps };
}
