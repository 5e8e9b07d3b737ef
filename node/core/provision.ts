/**
 * Provisioning decisions (SPEC §5.6, §10), made by an admin node that runs a
 * provisioner: which requires need a new node, when a request of ours is
 * fulfilled, when it failed, and when a requires is in cooldown. Pure: the
 * view and the time in, effects out; every write carries its compare.
 */
import type { Keys } from "../keys.ts";
import type {
  ProvisionFailures,
  ProvisionRequest,
  Requires,
} from "../schema.ts";
import type { Compare, Effect, EmitEffect, Op } from "./effects.ts";
import { isCapable, liveNodeCaps, type NodeCaps } from "./filter.ts";
import { canonicalHint, hintHash } from "./provision_note.ts";
import type {
  LocalProvision,
  ProvisionConfig,
  ProvisionEvent,
  ProvisionWriteEffect,
} from "./provision_types.ts";
import type { NodeView, Versioned } from "./view.ts";

/** Longest join-token lifetime (SPEC §10: 300 s). */
const TOKEN_TTL_MAX_S = 300;

const json = (v: unknown) => JSON.stringify(v);

/** The periodic provisioning decision: our requests' progress, then new requests. */
export function decideProvisioning(
  view: NodeView,
  keys: Keys,
  at: number,
): Effect[] {
  const cfg = view.config.provision;
  if (!cfg || view.lease_id === null || view.watch_revision === 0) return [];
  // Audit hooks back-pressure (SPEC §8): this workflow emits too, so it waits.
  if (view.hooks_stalled) return [];
  const members = liveNodeCaps(view, at);
  const out: Effect[] = [];
  for (const l of view.provision.local.values()) {
    out.push(...decideOwn(view, keys, cfg, l, members, at));
  }
  const self = view.config.node_id;
  if (view.caps.get(self)?.value.static.cluster_admin !== "true") return out;
  if (view.dispatch_paused) return out;
  for (const requires of unschedulable(view, members)) {
    out.push(...decideOpen(view, keys, cfg, requires, members, at));
  }
  return out;
}

/** The distinct requires of PENDING tasks no live node can run. */
function unschedulable(view: NodeView, members: NodeCaps[]): Requires[] {
  const seen = new Map<string, boolean>();
  const out: Requires[] = [];
  for (const id of view.pending) {
    const t = view.tasks.get(id)?.value;
    if (!t || !view.specs.has(t.spec_id) || view.claims.has(id)) continue;
    const key = canonicalHint(t.requires);
    if (seen.has(key)) continue;
    const none = !members.some((n) => isCapable(n, t.requires));
    seen.set(key, none);
    if (none) out.push(t.requires);
  }
  return out;
}

/** Open a request for `requires` unless one is open, in flight, or in cooldown. */
function decideOpen(
  view: NodeView,
  keys: Keys,
  cfg: ProvisionConfig,
  requires: Requires,
  members: NodeCaps[],
  at: number,
): Effect[] {
  const p = view.provision;
  const hash = hintHash(requires);
  if ((p.backoff.get(hash) ?? 0) > at) return [];
  for (const r of p.reqs.values()) {
    if (r.value.hint_hash === hash && r.value.fulfilled_by === undefined) {
      // One open request per requires, whoever opened it; but one whose
      // admin is gone and whose deadline passed has nobody to close it.
      const gone = r.value.requested_by !== view.config.node_id &&
        !members.some((m) => m.node_id === r.value.requested_by);
      return gone && at >= r.value.deadline_at
        ? [takeOver(view, keys, cfg, r, at)]
        : [];
    }
  }
  for (const l of p.local.values()) if (l.hint_hash === hash) return [];
  if (p.unreadable.has(hash)) return []; // fail closed
  if (Object.hasOwn(requires, "cluster_admin")) return []; // no token can carry it
  const f = p.failures.get(hash);
  if (f && f.value.cooldown_until > at) return [];
  const n = (f?.value.attempts ?? 0) + 1;
  const req_id = `${hash.slice(0, 12)}-${n}`;
  const record: ProvisionRequest = {
    req_id,
    hint: requires,
    hint_hash: hash,
    requested_at: at,
    requested_by: view.config.node_id,
    deadline_at: at + cfg.deadline_ms,
  };
  const failures: ProvisionFailures = {
    count: f?.value.count ?? 0,
    cooldown_until: f?.value.cooldown_until ?? 0,
    hint: requires,
    attempts: n,
    ...(f?.value.last_reason ? { last_reason: f.value.last_reason } : {}),
    ...(f?.value.last_closed ? { last_closed: f.value.last_closed } : {}),
  };
  return [
    {
      kind: "provision",
      action: "open",
      req_id,
      hint: requires,
      hint_hash: hash,
      record,
      failures,
      compare: [
        { key: keys.provisionReq(req_id), target: "version", equals: 0 },
        failuresGuard(keys, hash, f),
      ],
      ttl_s: cfg.req_ttl_s,
      token_ttl_s: Math.min(
        TOKEN_TTL_MAX_S,
        Math.max(2, Math.ceil(cfg.deadline_ms / 1000) + 30),
      ),
      deadline_ms: cfg.deadline_ms,
    },
  ];
}

/** One of our requests: fulfilled (first claim, or a fitting node by the deadline), or failed. */
function decideOwn(
  view: NodeView,
  keys: Keys,
  cfg: ProvisionConfig,
  l: LocalProvision,
  members: NodeCaps[],
  at: number,
): Effect[] {
  if (l.phase !== "allocated") return []; // a step is in flight
  // A close of ours that committed unseen (etcd's answer was lost): deciding
  // again from the record it wrote would count the failure twice.
  const f = view.provision.failures.get(l.hint_hash);
  if (f?.value.last_closed === l.req_id) return [confirmed(l)];
  // A node that joined and claimed fulfils it, even after Allocate failed:
  // an Allocate whose answer was lost may still have made that node.
  if (l.first_claim !== null) {
    return [fulfil(view, keys, l, l.first_claim.node_id, l.first_claim.at, at)];
  }
  if (l.allocate_error === null && at < l.deadline_at) return [];
  // The deadline (or Allocate failed): a node that fits and joined meanwhile
  // fulfils it even if it has not claimed (the tasks were cancelled, say).
  const joined = members.find((n) =>
    n.node_id !== view.config.node_id && isCapable(n, l.hint) &&
    (view.nodes.get(n.node_id)?.value.started_at ?? 0) >= l.requested_at
  );
  if (joined) return [fulfil(view, keys, l, joined.node_id, null, at)];
  return [
    closeFailed(
      view,
      keys,
      cfg,
      l,
      l.allocate_error !== null ? "allocate_failed" : "deadline",
      at,
    ),
  ];
}

function fulfil(
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
function confirmed(l: LocalProvision): ProvisionWriteEffect {
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

function closeFailed(
  view: NodeView,
  keys: Keys,
  cfg: ProvisionConfig,
  l: LocalProvision,
  reason: "deadline" | "allocate_failed",
  at: number,
): ProvisionWriteEffect {
  const req = view.provision.reqs.get(l.req_id);
  const f = view.provision.failures.get(l.hint_hash);
  const count = (f?.value.count ?? 0) + 1;
  const cooling = count >= cfg.failure_limit;
  const cooldown_until = cooling
    ? at + cfg.cooldown_ms
    : (f?.value.cooldown_until ?? 0);
  const why = reason === "deadline"
    ? `no node joined within ${cfg.deadline_ms} ms`
    : `Allocate failed: ${l.allocate_error}`;
  const success: Op[] = [];
  if (req) success.push({ op: "delete", key: keys.provisionReq(l.req_id) });
  // Revoke the token: a node that turns up late is refused.
  if (l.token_id_sha256 !== null) {
    success.push({ op: "delete", key: keys.joinToken(l.token_id_sha256) });
  }
  success.push({
    op: "put",
    key: keys.provisionFailures(l.hint_hash),
    value: json(
      {
        count,
        cooldown_until,
        hint: l.hint,
        attempts: f?.value.attempts ?? 0,
        last_reason: why,
        last_closed: l.req_id,
      } satisfies ProvisionFailures,
    ),
  });
  const emits = [emit("provision.failed", {
    req_id: l.req_id,
    hint: l.hint,
    reason,
    error: why,
    allocation_id: l.allocation_id,
    failures: count,
  })];
  if (cooling) {
    emits.push(emit("provision.failed", {
      req_id: l.req_id,
      hint: l.hint,
      reason: "cooldown",
      failures: count,
      cooldown_until,
    }));
  }
  return {
    kind: "provision",
    action: "write",
    req_id: l.req_id,
    closes: true,
    deallocate: l.allocation_id,
    compare: [
      reqGuard(keys, l.req_id, req),
      failuresGuard(keys, l.hint_hash, f),
    ],
    success,
    emits,
  };
}

/**
 * Closes a dead admin's request past its deadline, as that admin would have:
 * a counted failure, its token revoked, Deallocate of its allocation through
 * our provisioner (a cloud's ids are global; one that does not know it says
 * so, logged). Without it the requires waited for the request's lease
 * (300 s) and the allocation was never taken back.
 */
function takeOver(
  view: NodeView,
  keys: Keys,
  cfg: ProvisionConfig,
  r: Versioned<ProvisionRequest>,
  at: number,
): ProvisionWriteEffect {
  const req = r.value;
  const f = view.provision.failures.get(req.hint_hash);
  const count = (f?.value.count ?? 0) + 1;
  const cooling = count >= cfg.failure_limit;
  const cooldown_until = cooling
    ? at + cfg.cooldown_ms
    : (f?.value.cooldown_until ?? 0);
  const why =
    `no node joined by the deadline, and ${req.requested_by}, which opened it, is gone: closed by ${view.config.node_id}`;
  const success: Op[] = [{ op: "delete", key: keys.provisionReq(req.req_id) }];
  if (req.token_id_sha256 !== undefined) {
    success.push({ op: "delete", key: keys.joinToken(req.token_id_sha256) });
  }
  success.push({
    op: "put",
    key: keys.provisionFailures(req.hint_hash),
    value: json(
      {
        count,
        cooldown_until,
        hint: req.hint,
        attempts: f?.value.attempts ?? 0,
        last_reason: why,
        last_closed: req.req_id,
      } satisfies ProvisionFailures,
    ),
  });
  const payload = { req_id: req.req_id, hint: req.hint, failures: count };
  const emits = [emit("provision.failed", {
    ...payload,
    reason: "deadline",
    error: why,
    allocation_id: req.allocation_id ?? null,
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
    req_id: req.req_id,
    closes: true,
    deallocate: req.allocation_id ?? null,
    compare: [
      reqGuard(keys, req.req_id, r),
      failuresGuard(keys, req.hint_hash, f),
    ],
    success,
    emits,
    takeover_hash: req.hint_hash,
  };
}

/** A provisioning step finished: announce what committed, then decide on. */
export function onProvisionEvent(
  view: NodeView,
  keys: Keys,
  ev: ProvisionEvent,
): Effect[] {
  const out: Effect[] = [];
  const l = view.provision.local.get(ev.req_id);
  switch (ev.step) {
    case "opened":
      if (l) {
        out.push(emit("provision.requested", {
          req_id: ev.req_id,
          hint: l.hint,
          requested_at: l.requested_at,
          deadline_at: l.deadline_at,
        }));
      }
      break;
    case "open_refused":
      out.push({
        kind: "log",
        level: "warn",
        msg: "provision request not opened",
        fields: { req_id: ev.req_id, error: ev.error },
      });
      break;
    case "written":
      if (ev.ok) out.push(...ev.effect.emits);
      break;
  }
  return [...out, ...decideProvisioning(view, keys, ev.at)];
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
function failuresGuard(
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

function emit(event: string, payload: Record<string, unknown>): EmitEffect {
  return { kind: "emit", event, payload };
}
