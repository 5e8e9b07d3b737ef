/**
 * The audit tier's bookkeeping (SPEC §8) as pure data and functions: seq
 * assignment, durability, cumulative acks, back-pressure, which WAL segments
 * may go, and recovery of all of it from the files and the HWM at start.
 * No I/O: wal.ts does the files, delivery.ts the calls; a simulator can
 * drive these functions directly and check "no ack before durable, no gap".
 * @module
 */
import { createHash } from "node:crypto";

/** One audit event as the WAL holds it (one JSON line). */
export interface WalEntry {
  seq: number;
  kind: string;
  ts: number;
  payload_json: string;
  dedup_key: string;
}

/**
 * A transition about to be sent to etcd whose commit yields events: written
 * (fsynced) before the transaction leaves, so a crash between etcd's commit
 * and the events reaching the WAL cannot lose them. Resolved when the events
 * are written or the transaction is known to have failed; one still open at
 * start is resolved against etcd (did the first change of `key` after
 * `after_rev` write `value`?).
 */
export interface Intent {
  id: number;
  task_id: string;
  /** TxnReason of the transaction. */
  reason: string;
  /** The envelope key and the value the transaction puts there. */
  key: string;
  value: string;
  /** The envelope revision the transaction compares against. */
  after_rev: number;
  /** next_seq when it was written: the segment holding it is not retired while it is open. */
  at_seq: number;
  /**
   * The envelope's state before the transaction (a finish from CLAIMED
   * also emits task.started); absent in intents written before it was kept.
   */
  from_state?: string;
  /**
   * In memory only, set when the WAL is read at start: this task's events
   * written after the intent (wal_intents.ts `writtenKey`: kind, attempt and
   * fence, so a later attempt's events do not count), i.e. its commit's
   * events that got into the WAL before a crash.
   */
  written?: Set<string>;
}

/** A WAL file: the active one or a sealed segment with its seq range in the name. */
export interface SegmentInfo {
  /** First seq the segment may hold. */
  first: number;
  /** Last seq it holds; null for the active segment (still growing). */
  last: number | null;
}

/** Everything the audit tier knows about one (node, plugin). */
export interface AuditState {
  /** The seq the next event gets. */
  next_seq: number;
  /** Highest seq known fsynced: nothing above it may be sent. */
  durable: number;
  /** Highest seq the plugin acked (acks are cumulative). */
  acked: number;
  /** The acked HWM as stored in etcd: what a restart resumes after. */
  hwm: number;
  /** Entries with seq > acked, in seq order. */
  unacked: WalEntry[];
  /**
   * Seq ranges after `acked` that recovery found missing from the WAL (each
   * reported as a gap): the cumulative ack steps over them. Without this one
   * hole stalled the node for good, as the ack waited for a seq that no
   * longer existed. Empty outside recovery.
   */
  lost: { from: number; to: number }[];
  /** Sealed segments, oldest first. */
  sealed: SegmentInfo[];
  /** First seq of the active segment and how many entries it holds. */
  active_first: number;
  active_count: number;
  /** The back-pressure window is full. */
  stalled: boolean;
  /** Stalls so far (each reported once with hook.queue.saturated). */
  stalls: number;
  /** Intents not resolved yet, by id. */
  intents: Map<number, Intent>;
  next_intent: number;
}

/** Back-pressure thresholds (SPEC §8 `hooks_backpressure_window`). */
export interface Window {
  /** Stall at this many unacked. @default 100 */
  size: number;
  /** Resume once unacked is at or below this. @default 90 (size − 10 %) */
  resume_at: number;
}

export const DEFAULT_WINDOW: Window = { size: 100, resume_at: 90 };

/** `dedup_key` = sha256 of node, seq, kind, ts (unit-separated), hex. */
export function dedupKey(
  nodeId: string,
  seq: number,
  kind: string,
  ts: number,
): string {
  return createHash("sha256").update(
    `${nodeId}\x1f${seq}\x1f${kind}\x1f${ts}`,
  ).digest("hex");
}

/** A fresh state for a plugin that never had a WAL (or after `acked` of them). */
export function emptyAudit(acked = 0): AuditState {
  return {
    next_seq: acked + 1,
    durable: acked,
    acked,
    hwm: acked,
    unacked: [],
    lost: [],
    sealed: [],
    active_first: acked + 1,
    active_count: 0,
    stalled: false,
    stalls: 0,
    intents: new Map(),
    next_intent: 1,
  };
}

/** Records an intent (the caller appends and fsyncs it before sending the transaction). */
export function openIntent(
  s: AuditState,
  i: Omit<Intent, "id" | "at_seq">,
): Intent {
  const intent = { ...i, id: s.next_intent++, at_seq: s.next_seq };
  s.intents.set(intent.id, intent);
  return intent;
}

/** The intent's events are written, or its transaction did not commit. */
export function closeIntent(s: AuditState, id: number): void {
  s.intents.delete(id);
}

/** Gives the next event its seq; the caller appends it and then calls {@linkcode markDurable}. */
export function assign(
  s: AuditState,
  nodeId: string,
  kind: string,
  ts: number,
  payloadJson: string,
): WalEntry {
  const seq = s.next_seq++;
  const entry = {
    seq,
    kind,
    ts,
    payload_json: payloadJson,
    dedup_key: dedupKey(nodeId, seq, kind, ts),
  };
  s.unacked.push(entry);
  s.active_count++;
  return entry;
}

/** The append of the entry {@linkcode assign} just gave out failed: takes it back. */
export function unassign(s: AuditState, e: WalEntry): void {
  if (s.unacked.at(-1) !== e || e.seq !== s.next_seq - 1) {
    throw new Error(`hooks WAL: seq ${e.seq} is not the last one assigned`);
  }
  s.unacked.pop();
  s.next_seq--;
  s.active_count--;
}

/** Everything up to `seq` is on disk (fsynced). */
export function markDurable(s: AuditState, seq: number): void {
  if (seq > s.durable) s.durable = Math.min(seq, s.next_seq - 1);
}

/** The entry to send next: the oldest unacked, if it is durable. */
export function nextToSend(s: AuditState): WalEntry | null {
  const e = s.unacked[0];
  return e !== undefined && e.seq <= s.durable ? e : null;
}

/**
 * The entry to send after `sent` (the highest seq already sent, at least
 * `acked`) when pipelining: seq sent + 1, if it is durable.
 */
export function nextAfter(s: AuditState, sent: number): WalEntry | null {
  // The first entry above `sent`; without lost ranges it sits at sent − acked.
  const u = s.unacked;
  let lo = 0;
  let hi = u.length;
  const guess = sent - s.acked;
  if (guess >= 0 && guess < hi && u[guess].seq === sent + 1) lo = hi = guess;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (u[mid].seq <= sent) lo = mid + 1;
    else hi = mid;
  }
  const e = u[lo];
  return e !== undefined && e.seq <= s.durable ? e : null;
}

/**
 * How far the cumulative ack may move given the seqs the plugin acked
 * (`oks`): over every acked entry and every lost range, up to the first
 * entry not acked yet.
 */
export function ackable(s: AuditState, oks: ReadonlySet<number>): number {
  let upto = s.acked;
  let i = 0;
  let j = 0;
  for (;;) {
    while (j < s.lost.length && s.lost[j].to <= upto) j++;
    if (j < s.lost.length && s.lost[j].from <= upto + 1) {
      upto = s.lost[j].to;
      continue;
    }
    while (i < s.unacked.length && s.unacked[i].seq <= upto) i++;
    const e = s.unacked[i];
    if (e === undefined || e.seq !== upto + 1 || !oks.has(e.seq)) return upto;
    upto = e.seq;
  }
}

/**
 * The plugin acked `seq` (and with it everything before). An ack beyond
 * what is durable would be a bug in the sender: it is ignored, so an entry
 * can never be retired before it is on disk. Returns how many were retired.
 */
export function ack(s: AuditState, seq: number): number {
  const upto = Math.min(seq, s.durable);
  if (upto <= s.acked) return 0;
  s.acked = upto;
  let n = 0;
  while (n < s.unacked.length && s.unacked[n].seq <= upto) n++;
  s.unacked.splice(0, n);
  while (s.lost.length > 0 && s.lost[0].to <= upto) s.lost.shift();
  return n;
}

/** Unacked count now (lost seqs are not waiting for anything). */
export function unackedCount(s: AuditState): number {
  return s.unacked.length;
}

/**
 * Stall/resume with hysteresis: stalls when the window fills, resumes once
 * it drained to `resume_at`, so one stall is reported once (not once per ack).
 */
export function backpressure(
  s: AuditState,
  w: Window = DEFAULT_WINDOW,
): "stall" | "resume" | null {
  const n = unackedCount(s);
  if (!s.stalled && n >= w.size) {
    s.stalled = true;
    s.stalls++;
    return "stall";
  }
  if (s.stalled && n <= w.resume_at) {
    s.stalled = false;
    return "resume";
  }
  return null;
}

/** The active segment is full: seal it (the caller renames the file) and start the next. */
export function shouldRotate(s: AuditState, maxEntries: number): boolean {
  return s.active_count >= maxEntries;
}

/** The segment a rotation now would seal: the active one, ending at next_seq − 1. */
export function sealing(s: AuditState): SegmentInfo {
  return { first: s.active_first, last: s.next_seq - 1 };
}

/** Records a rotation (once the files are renamed): the active segment is sealed. */
export function rotated(s: AuditState): SegmentInfo {
  const seg = sealing(s);
  s.sealed.push(seg);
  s.active_first = s.next_seq;
  s.active_count = 0;
  return seg;
}

/** The HWM was stored in etcd up to `seq`. */
export function hwmStored(s: AuditState, seq: number): void {
  if (seq > s.hwm) s.hwm = Math.min(seq, s.acked);
}

/**
 * Sealed segments whose every entry is acked and covered by the stored HWM
 * (a restart replays from the HWM: what lies after it must still be on
 * disk): the caller deletes their files.
 */
export function retirable(s: AuditState): SegmentInfo[] {
  const out: SegmentInfo[] = [];
  let oldestIntent = Infinity;
  for (const i of s.intents.values()) {
    oldestIntent = Math.min(oldestIntent, i.at_seq);
  }
  while (
    s.sealed.length > 0 && s.sealed[0].last! <= s.hwm &&
    s.sealed[0].last! < oldestIntent
  ) {
    out.push(s.sealed.shift()!);
  }
  return out;
}

/**
 * The audit tier's invariants over one state, for tests and the simulator:
 * nothing acked before it was durable, the stored HWM never ahead of the
 * acks, and the unacked entries exactly acked+1 … next_seq−1 less the
 * ranges recovery found lost (no other gap). Returns the first violation,
 * or null.
 */
export function auditViolation(s: AuditState): string | null {
  const last = s.next_seq - 1;
  if (s.acked > s.durable) {
    return `acked ${s.acked} before durable (durable ${s.durable})`;
  }
  if (s.durable > last) return `durable ${s.durable} beyond last seq ${last}`;
  if (s.hwm > s.acked) return `stored HWM ${s.hwm} ahead of acked ${s.acked}`;
  let expected = s.acked + 1;
  let j = 0;
  for (let i = 0; i < s.unacked.length; i++) {
    while (j < s.lost.length && s.lost[j].from === expected) {
      expected = s.lost[j++].to + 1;
    }
    if (s.unacked[i].seq !== expected) {
      return `gap: unacked[${i}] is seq ${
        s.unacked[i].seq
      }, expected ${expected}`;
    }
    expected++;
  }
  while (j < s.lost.length && s.lost[j].from === expected) {
    expected = s.lost[j++].to + 1;
  }
  if (j < s.lost.length || expected - 1 !== last) {
    return `gap: ${s.unacked.length} unacked after ${s.acked}, last seq ${last}`;
  }
  return null;
}
