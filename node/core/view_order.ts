/**
 * What keeps the view from going back in time when records reach it other
 * than through the watch: a failed transaction's reads, answered after the
 * watch moved past them, and a re-list older than the node's own writes.
 * (The watch's own repeats are skipped where changes are applied, in
 * apply.ts: a change at or below the revision already delivered.)
 * @module
 */
import type { Keys } from "../keys.ts";
import type { KeyChange } from "./events.ts";
import { applyChange } from "./view_changes.ts";
import type { MutableView, Versioned } from "./view.ts";

/**
 * A failed transaction's reads, taken at `readAt`: the answer comes over
 * its own stream, maybe from a member behind the one the watch is on, so
 * the watch may already have delivered what came after. Then the view is
 * newer than the reads, and applying them would bring back a record since
 * deleted (a claim that then blocks every claim of the task here).
 */
export function lateReads(
  view: MutableView,
  keys: Keys,
  reads: KeyChange[],
  readAt: number,
  warnings: string[],
): void {
  if (readAt <= view.watch_revision) return;
  applyReads(view, keys, reads, warnings);
}

/** The view's tasks, claims and deletes newer than `revision`, as changes. */
export function newerThan(
  view: MutableView,
  keys: Keys,
  revision: number,
): KeyChange[] {
  const out: KeyChange[] = [];
  const add = (key: string, v: Versioned<unknown>) => {
    if (v.mod_revision <= revision) return;
    out.push({
      key,
      revision: v.mod_revision,
      kv: {
        value: JSON.stringify(v.value),
        mod_revision: v.mod_revision,
        create_revision: v.create_revision,
        lease: v.lease,
      },
    });
  };
  for (const [id, t] of view.tasks) add(keys.task(id), t);
  for (const [id, c] of view.claims) add(keys.claim(id), c);
  for (const [key, rev] of view.tombstones) {
    if (rev > revision) out.push({ key, revision: rev, kv: null });
  }
  return out;
}

/** Applies records read back with a transaction; an absent key is a delete at the read's revision. */
export function applyReads(
  view: MutableView,
  keys: Keys,
  reads: KeyChange[],
  warnings: string[],
): void {
  for (const c of reads) {
    applyChange(view, keys, c, warnings);
    if (c.kv === null) view.tombstones.set(c.key, c.revision);
  }
}
