/** What became of one of our own transactions: committed, as answered or as read back. */
import type { NodeEvent } from "./events.ts";

/**
 * Whether our transaction is in etcd: it committed, or its compare failed
 * only because it had already committed (a retry on another endpoint, a lost
 * reply): every key it wrote reads back exactly as it wrote it.
 */
export function txnCommitted(
  ev: Extract<NodeEvent, { type: "txn_done" }>,
): boolean {
  if (ev.ok) return true;
  if (!ev.reads || ev.effect.success.length === 0) return false;
  for (const op of ev.effect.success) {
    const r = ev.reads.find((c) => c.key === op.key);
    if (!r) return false;
    if (op.op === "delete" ? r.kv !== null : r.kv?.value !== op.value) {
      return false;
    }
  }
  return true;
}

/** The revision a transaction recognised from its read-back committed at (its puts' mod revision). */
export function writtenAt(
  ev: Extract<NodeEvent, { type: "txn_done" }>,
): number {
  const put = ev.effect.success.find((op) => op.op === "put");
  const read = ev.reads?.find((r) => r.key === put?.key);
  return read?.kv?.mod_revision ?? ev.revision;
}
