/**
 * How one provisioning request ends (provision.ts decides which): fulfilled,
 * confirmed after a lost answer, or failed (also a dead admin's, taken
 * over). Pure: each write is one guarded transaction.
 */
import type { Keys } from "../keys.ts";
import type {
  ProvisionFailures,
  ProvisionRequest,
  Requires,
} from "../schema.ts";
import type { Compare, EmitEffect, Op } from "./effects.ts";
import type {
  LocalProvision,
  ProvisionConfig,
  ProvisionWriteEffect,
} from "./provision_types.ts";
import type { NodeView, Versioned } from "./view.ts";

const json = (v: unknown) => JSON.stringify(v);

/** Fulfilled by `nodeId`: kept for `cluster status`, the failure count reset. */
export function fulfil(
  view: NodeView,
  keys: Keys,
  l: LocalProvision,
  nodeId: string,
  claimedAt: number | null,
  at: number,
): ProvisionWriteEffect {
  const req = view.provision.reqs.get(l.req_id);
  const f = view.provision.failures.get(l.hint_hash);
  const success: Op[] = [];
  if (req) {
    // Kept (under its lease) for `cluster status`; fulfilled is not open.
    success.push({
      op: "put",
      key: keys.provisionReq(l.req_id),
      value: json({
        ...req.value,
        ...(l.allocation_id ? { allocation_id: l.allocation_id } : {}),
        fulfilled_by: nodeId,
        fulfilled_at: at,
      }),
      lease: req.lease,
    });
  }
  success.push({
    op: "put",
    key: keys.provisionFailures(l.hint_hash),
    value: json(
      {
        count: 0,
        cooldown_until: 0,
        hint: l.hint,
        attempts: f?.value.attempts ?? 0,
        last_closed: l.req_id,
      } satisfies ProvisionFailures,
    ),
  });
  return {
    kind: "provision",
    action: "write",
    req_id: l.req_id,
    closes: true,
    deallocate: null,
    compare: [
      reqGuard(keys, l.req_id, req),
      failuresGuard(keys, l.hint_hash, f),
    ],
    success,
    emits: [emit("provision.fulfilled", {
      req_id: l.req_id,
      hint: l.hint,
      node_id: nodeId,
      allocation_id: l.allocation_id,
      latency_ms: claimedAt === null ? null : claimedAt - l.requested_at,
    })],
  };
}

/**
 * The close that committed unseen: nothing left to write (the transaction is
 * empty); its Deallocate runs and its events are announced now, once.
 */
export function confirmed(l: LocalProvision): ProvisionWriteEffect {
  return {
    kind: "provision",
    action: "write",
    req_id: l.req_id,
    closes: true,
    deallocate: l.unconfirmed?.deallocate ?? null,
    compare: [],
    success: [],
    emits: l.unconfirmed?.emits ?? [],
  };
}

/** What a failure close needs of a request: ours (local), or a dead admin's record. */
interface Closing {
  readonly req_id: string;
  readonly hint: Requires;
  readonly hint_hash: string;
  readonly token_id_sha256: string | null;
  readonly allocation_id: string | null;
  readonly token_revision?: number | null;
  readonly token_used?: boolean;
}

/**
 * A request that failed: a counted failure (cooldown after `failure_limit`),
 * the request deleted, its token revoked (a node that turns up late is
 * refused), Deallocate once it committed.
 */
export function closeFailed(
  view: NodeView,
  keys: Keys,
  cfg: ProvisionConfig,
  c: Closing,
  reason: "deadline" | "allocate_failed",
  why: string,
  at: number,
): ProvisionWriteEffect {
  const req = view.provision.reqs.get(c.req_id);
  const f = view.provision.failures.get(c.hint_hash);
  const count = (f?.value.count ?? 0) + 1;
  const cooling = count >= cfg.failure_limit;
  const cooldown_until = cooling
    ? at + cfg.cooldown_ms
    : (f?.value.cooldown_until ?? 0);
  const success: Op[] = [];
  if (req) success.push({ op: "delete", key: keys.provisionReq(c.req_id) });
  if (c.token_id_sha256 !== null) {
    success.push({ op: "delete", key: keys.joinToken(c.token_id_sha256) });
  }
  success.push({
    op: "put",
    key: keys.provisionFailures(c.hint_hash),
    value: json(
      {
        count,
        cooldown_until,
        hint: c.hint,
        attempts: f?.value.attempts ?? 0,
        last_reason: why,
        last_closed: c.req_id,
      } satisfies ProvisionFailures,
    ),
  });
  const payload = { req_id: c.req_id, hint: c.hint, failures: count };
  const emits = [emit("provision.failed", {
    ...payload,
    reason,
    error: why,
    allocation_id: c.allocation_id,
  })];
  if (cooling) {
    emits.push(
      emit("provision.failed", {
        ...payload,
        reason: "cooldown",
        cooldown_until,
      }),
    );
  }
  return {
    kind: "provision",
    action: "write",
    req_id: c.req_id,
    closes: true,
    deallocate: c.allocation_id,
    compare: [
      reqGuard(keys, c.req_id, req),
      failuresGuard(keys, c.hint_hash, f),
      // The token still as minted: a join that consumed it first (its node
      // not registered yet) fails this close instead of being taken back.
      ...(c.token_id_sha256 !== null && c.token_revision != null &&
          !c.token_used
        ? [{
          key: keys.joinToken(c.token_id_sha256),
          target: "mod" as const,
          equals: c.token_revision,
        }]
        : []),
    ],
    success,
    emits,
  };
}

/**
 * Closes a dead admin's request past its deadline, as that admin would have
 * (Deallocate through our provisioner: a cloud's ids are global; one that
 * does not know it says so, logged). Without it the requires waited for the
 * request's lease (300 s) and the allocation was never taken back.
 */
export function takeOver(
  view: NodeView,
  keys: Keys,
  cfg: ProvisionConfig,
  r: ProvisionRequest,
  at: number,
): ProvisionWriteEffect {
  const why =
    `no node joined by the deadline, and ${r.requested_by}, which opened it, is gone: closed by ${view.config.node_id}`;
  const c = {
    ...r,
    token_id_sha256: r.token_id_sha256 ?? null,
    allocation_id: r.allocation_id ?? null,
  };
  return {
    ...closeFailed(view, keys, cfg, c, "deadline", why, at),
    takeover_hash: r.hint_hash,
  };
}

/** The request as the decision saw it, or absent (never seen, or its lease ended). */
function reqGuard(
  keys: Keys,
  reqId: string,
  req: Versioned<ProvisionRequest> | undefined,
): Compare {
  return req
    ? { key: keys.provisionReq(reqId), target: "mod", equals: req.mod_revision }
    : { key: keys.provisionReq(reqId), target: "version", equals: 0 };
}

/** The failure record as the decision saw it: the cooldown cannot be raced past. */
export function failuresGuard(
  keys: Keys,
  hash: string,
  f: Versioned<ProvisionFailures> | undefined,
): Compare {
  return f
    ? {
      key: keys.provisionFailures(hash),
      target: "mod",
      equals: f.mod_revision,
    }
    : { key: keys.provisionFailures(hash), target: "version", equals: 0 };
}

export function emit(
  event: string,
  payload: Record<string, unknown>,
): EmitEffect {
  return { kind: "emit", event, payload };
}
