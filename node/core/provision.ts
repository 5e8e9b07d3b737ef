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
import type { Effect } from "./effects.ts";
import { isCapable, liveNodeCaps, type NodeCaps } from "./filter.ts";
import {
  closeFailed,
  confirmed,
  emit,
  failuresGuard,
  fulfil,
  takeOver,
} from "./provision_close.ts";
import { canonicalHint, hintHash } from "./provision_note.ts";
import type {
  LocalProvision,
  ProvisionConfig,
  ProvisionEvent,
} from "./provision_types.ts";
import type { NodeView } from "./view.ts";

/** Longest join-token lifetime (SPEC §10: 300 s). */
const TOKEN_TTL_MAX_S = 300;

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
        ? [takeOver(view, keys, cfg, r.value, at)]
        : [];
    }
  }
  for (const l of p.local.values()) if (l.hint_hash === hash) return [];
  if (p.unreadable.has(hash)) return []; // fail closed
  if (Object.hasOwn(requires, "cluster_admin")) return []; // no token can carry it
  const f = p.failures.get(hash);
  if (f && f.value.cooldown_until > at) return [];
  const n = (f?.value.attempts ?? 0) + 1;
  // The time makes it unique: `attempts` alone repeats once the failure
  // record is deleted (docs/operations.md tells operators to, when it is
  // unreadable) or rolled back by a restore, and Allocate is idempotent per
  // request id: the provisioner answered with the old allocation and started
  // nothing, or its deadline close took back a node still working (review).
  // Short: it names the provisioned node and, in the reference provisioner,
  // a data dir whose plugin sockets must stay under 108 bytes.
  const req_id = `${hash.slice(0, 8)}-${n}-${
    Math.floor(at / 1000).toString(36)
  }`;
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
  // Its token was used: a node is joining (admitted, not registered yet).
  // It gets JOIN_GRACE_MS past the deadline to register before the request
  // fails and the allocation is taken back.
  if (
    l.token_used && l.allocate_error === null &&
    at < l.deadline_at + JOIN_GRACE_MS
  ) return [];
  return [
    l.allocate_error !== null
      ? closeFailed(
        view,
        keys,
        cfg,
        l,
        "allocate_failed",
        `Allocate failed: ${l.allocate_error}`,
        at,
      )
      : closeFailed(
        view,
        keys,
        cfg,
        l,
        "deadline",
        `no node joined within ${cfg.deadline_ms} ms`,
        at,
      ),
  ];
}

/** How long past its deadline a request whose token a join consumed waits for that node. @default 30000 */
export const JOIN_GRACE_MS = 30_000;

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
