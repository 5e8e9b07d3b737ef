/**
 * Builders for the state-machine transactions of SPEC §4. Each returns the
 * compare and the operations together, so no write can leave without its guard.
 */
import { type Claim, type Envelope, TERMINAL_STATES } from "../schema.ts";
import type { Keys } from "../keys.ts";
import type { Compare, Op, TxnEffect } from "./effects.ts";
import type { Versioned } from "./view.ts";
import { isUnschedulableNote } from "./provision_note.ts";

const json = (v: unknown) => JSON.stringify(v);

/**
 * PENDING→CLAIMED: claim (on our lease) and envelope in one transaction.
 * Besides SPEC §4's compares, the dispatch pause must be absent at commit
 * (§5.8: while it is set no node claims; a view that has not seen it yet
 * would otherwise claim after it). A failed compare reads it back.
 */
export function claimTxn(
  keys: Keys,
  t: Versioned<Envelope>,
  nodeId: string,
  leaseId: string,
  at: number,
): TxnEffect {
  const env = t.value;
  const attempt = env.attempts + 1;
  const claim: Claim = {
    node_id: nodeId,
    lease_id: leaseId,
    claimed_at: at,
    attempt,
  };
  const next: Envelope = {
    ...env,
    state: "CLAIMED",
    state_version: env.state_version + 1,
    claimant_node_id: nodeId,
    claim_lease_id: leaseId,
    attempts: attempt,
    not_before: null,
    last_error: isUnschedulableNote(env.last_error) ? null : env.last_error,
  };
  return {
    kind: "txn",
    reason: "claim",
    task_id: env.task_id,
    attempt,
    compare: [
      { key: keys.task(env.task_id), target: "mod", equals: t.mod_revision },
      { key: keys.claim(env.task_id), target: "version", equals: 0 },
      { key: keys.dispatchPaused(), target: "version", equals: 0 },
    ],
    success: [
      {
        op: "put",
        key: keys.claim(env.task_id),
        value: json(claim),
        lease: leaseId,
      },
      { op: "put", key: keys.task(env.task_id), value: json(next) },
    ],
  };
}

/** A write by the claimant: guarded by the fence and the envelope revision. */
export function fencedTxn(
  keys: Keys,
  reason: "running" | "finish",
  t: Versioned<Envelope>,
  fence: number,
  next: Envelope,
  deleteClaim: boolean,
): TxnEffect {
  const id = t.value.task_id;
  return {
    kind: "txn",
    reason,
    task_id: id,
    from_state: t.value.state,
    compare: [
      { key: keys.claim(id), target: "create", equals: fence },
      { key: keys.task(id), target: "mod", equals: t.mod_revision },
    ],
    success: [
      { op: "put", key: keys.task(id), value: json(next) },
      ...(deleteClaim ? [{ op: "delete" as const, key: keys.claim(id) }] : []),
    ],
  };
}

/** A write by any node that must not race a live claim: the claim key must be absent. */
export function unclaimedTxn(
  keys: Keys,
  reason: "requeue" | "unblock" | "cancel_dependent" | "unschedulable" | "note",
  t: Versioned<Envelope>,
  next: Envelope,
): TxnEffect {
  const id = t.value.task_id;
  return {
    kind: "txn",
    reason,
    task_id: id,
    compare: [
      { key: keys.task(id), target: "mod", equals: t.mod_revision },
      { key: keys.claim(id), target: "version", equals: 0 },
    ],
    success: [{ op: "put", key: keys.task(id), value: json(next) }],
  };
}

export const NO_CAPABLE_NODE = "no capable node";

/** Every key a transaction compares or writes: what the shell reads back when its compare fails. */
export function txnKeys(t: { compare: Compare[]; success: Op[] }): string[] {
  const keys = new Set<string>();
  for (const c of t.compare) keys.add(c.key);
  for (const op of t.success) keys.add(op.key);
  return [...keys];
}

/**
 * A claim no live node holds (its lease is no live node's, or it has none:
 * written by hand, or left by a bug) would keep the task from ever being
 * claimed or re-queued. The monitor removes it by compare and says so.
 */
export function strayClaimTxn(
  keys: Keys,
  t: Versioned<Envelope>,
  claim: Versioned<Claim>,
): TxnEffect {
  const id = t.value.task_id;
  const why = claim.lease === "0"
    ? "a claim without a lease"
    : `a claim under lease ${claim.lease}, held by no live node`;
  return {
    kind: "txn",
    reason: "stray_claim",
    task_id: id,
    compare: [
      { key: keys.task(id), target: "mod", equals: t.mod_revision },
      { key: keys.claim(id), target: "mod", equals: claim.mod_revision },
    ],
    // A finished envelope is never written again: then only the claim goes.
    success: TERMINAL_STATES.has(t.value.state)
      ? [{ op: "delete", key: keys.claim(id) }]
      : [
        {
          op: "put",
          key: keys.task(id),
          value: json({
            ...t.value,
            state_version: t.value.state_version + 1,
            last_error: `stray claim removed: ${why}`,
          }),
        },
        { op: "delete", key: keys.claim(id) },
      ],
  };
}
