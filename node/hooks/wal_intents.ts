/**
 * At start, what each open audit intent's commit already got into the WAL
 * before a crash, so its recovery (intents.ts missingEvents) emits only the
 * rest. Pure.
 * @module
 */
import type { AuditState, Intent, WalEntry } from "./wal_state.ts";

/** What identifies one commit's event of a task: kind, attempt and fence. */
export function writtenKey(
  kind: string,
  payload: { attempt?: unknown; fence?: unknown },
): string {
  return `${kind}|${payload.attempt ?? ""}|${payload.fence ?? ""}`;
}

/** Fills each open intent's `written` from the WAL's entries at or after its `at_seq` (one pass). */
export function fillWritten(s: AuditState, bySeq: Map<number, WalEntry>): void {
  const byTask = new Map<string, Intent[]>();
  for (const i of s.intents.values()) {
    i.written = new Set();
    byTask.set(i.task_id, [...(byTask.get(i.task_id) ?? []), i]);
  }
  if (byTask.size === 0) return;
  for (const [seq, e] of bySeq) {
    let p;
    try {
      p = JSON.parse(e.payload_json);
    } catch {
      continue; // an unreadable payload names no task
    }
    for (const i of byTask.get(p?.task_id) ?? []) {
      if (seq >= i.at_seq) i.written!.add(writtenKey(e.kind, p));
    }
  }
}
