/**
 * The view reducer's provisioning part: the request and failure records from
 * the watch, the first claim by a node that fits one of our requests, and
 * the local half of provisioning effects and events. Pure, like apply.ts.
 */
import {
  CapsRecord,
  Claim,
  ProvisionFailures,
  ProvisionRequest,
  RECORD_MAX_BYTES,
} from "../schema.ts";
import type { Keys } from "../keys.ts";
import type { KeyChange } from "./events.ts";
import type {
  LocalProvision,
  MutableProvisionView,
  ProvisionEffect,
  ProvisionEvent,
} from "./provision_types.ts";
import type { MutableView, Versioned } from "./view.ts";

/**
 * Applies one change of a provisioning collection (or a claim, while we have
 * requests of our own). Returns false when the change is not provisioning's.
 */
export function applyProvisionChange(
  view: MutableView,
  collection: string,
  id: string,
  c: KeyChange,
  warnings: string[],
): boolean {
  const p = view.provision;
  if (collection === "claims") {
    if (c.kv !== null && p.local.size > 0) noteClaim(p, view.caps, c.kv.value);
    return false; // the claims map is apply.ts's
  }
  if (collection === "join-tokens") {
    if (c.kv === null && p.local.size > 0) noteTokenUsed(p, id);
    return true;
  }
  if (collection !== "provision-req" && collection !== "provision-failures") {
    return false;
  }
  const isReq = collection === "provision-req";
  const map = (isReq ? p.reqs : p.failures) as Map<
    string,
    Versioned<unknown>
  >;
  const existing = map.get(id);
  if (c.kv === null) {
    if (!existing || existing.mod_revision < c.revision) {
      map.delete(id);
      if (!isReq) p.unreadable.delete(id);
    }
    return true;
  }
  if (existing && existing.mod_revision >= c.kv.mod_revision) return true;
  const max = RECORD_MAX_BYTES[collection];
  const parsed = c.kv.value.length > max
    ? null
    : (isReq ? ProvisionRequest : ProvisionFailures).safeParse(
      safeJson(c.kv.value),
    );
  if (parsed === null || !parsed.success) {
    warnings.push(
      `${c.key}: invalid record skipped${
        isReq ? "" : " (no provisioning for this requires while it is)"
      }`,
    );
    map.delete(id);
    // Fail closed: a failure record we cannot read may hold a cooldown.
    if (!isReq) p.unreadable.add(id);
    return true;
  }
  if (!isReq) p.unreadable.delete(id);
  if (isReq && !existing) {
    adoptOwn(p, view.config.node_id, parsed.data as ProvisionRequest, warnings);
  }
  map.set(id, {
    value: parsed.data,
    mod_revision: c.kv.mod_revision,
    create_revision: c.kv.create_revision,
    lease: c.kv.lease,
  });
  return true;
}

/**
 * A request of ours we have no local state for: opened by this node's
 * previous process (it lives on its own lease). Taken up again, so it is
 * fulfilled or failed at its deadline like any other, instead of blocking
 * its requires until the lease ends.
 */
function adoptOwn(
  p: MutableProvisionView,
  self: string,
  r: ProvisionRequest,
  warnings: string[],
): void {
  if (r.requested_by !== self || r.fulfilled_by !== undefined) return;
  if (p.local.has(r.req_id)) return; // ours, in this process
  p.local.set(r.req_id, {
    req_id: r.req_id,
    hint: r.hint,
    hint_hash: r.hint_hash,
    requested_at: r.requested_at,
    deadline_at: r.deadline_at,
    phase: "allocated",
    allocation_id: r.allocation_id ?? null,
    allocate_error: null,
    token_id_sha256: r.token_id_sha256 ?? null,
    token_revision: null,
    token_used: false,
    first_claim: null,
    unconfirmed: null,
  });
  warnings.push(
    `provision request ${r.req_id} of this node's previous run taken up again (deadline ${r.deadline_at})`,
  );
}

/**
 * Forgets the etcd half (a relist rebuilds it); our own requests stay. A
 * token of ours the list no longer holds was used (or expired) while the
 * watch was away: its delete will never come as a change, and a close
 * comparing it would fail at every try (review of 94134a4).
 */
export function clearProvisionRecords(
  p: MutableProvisionView,
  keys: Keys,
  listed: readonly KeyChange[],
): void {
  p.reqs.clear();
  p.failures.clear();
  p.unreadable.clear();
  if (p.local.size === 0) return;
  const tokens = new Set<string>();
  for (const c of listed) {
    const k = keys.parse(c.key);
    if (k?.collection === "join-tokens") tokens.add(k.id);
  }
  for (const [id, l] of p.local) {
    if (
      l.token_id_sha256 !== null && l.token_revision !== null &&
      !l.token_used && !tokens.has(l.token_id_sha256)
    ) p.local.set(id, { ...l, token_used: true });
  }
}

/** A claim by a node whose caps fit one of our waiting requests: its first claim. */
function noteClaim(
  p: MutableProvisionView,
  caps: ReadonlyMap<string, Versioned<CapsRecord>>,
  value: string,
): void {
  const claim = Claim.safeParse(safeJson(value));
  if (!claim.success) return;
  const nodeCaps = caps.get(claim.data.node_id)?.value.static;
  if (!nodeCaps) return;
  for (const [id, l] of p.local) {
    if (l.first_claim !== null || l.phase === "done") continue;
    if (claim.data.claimed_at < l.requested_at) continue;
    const fits = Object.entries(l.hint).every(([k, v]) => nodeCaps[k] === v);
    if (fits) {
      p.local.set(id, {
        ...l,
        first_claim: { node_id: claim.data.node_id, at: claim.data.claimed_at },
      });
    }
  }
}

/** The local half of a provisioning effect, as it is issued. */
export function applyProvisionEffect(
  p: MutableProvisionView,
  e: ProvisionEffect,
  at: number,
): void {
  if (e.action === "open") {
    p.local.set(e.req_id, {
      req_id: e.req_id,
      hint: e.hint,
      hint_hash: e.hint_hash,
      requested_at: at,
      deadline_at: e.record.deadline_at,
      phase: "opening",
      allocation_id: null,
      allocate_error: null,
      token_id_sha256: null,
      token_revision: null,
      token_used: false,
      first_claim: null,
      unconfirmed: null,
    });
    return;
  }
  const l = p.local.get(e.req_id);
  if (l) p.local.set(e.req_id, { ...l, phase: "writing" });
  // A takeover has no local state: the hint waits while it is in flight
  // (the write answers within its timeout and a 1 s pause on failure).
  if (e.takeover_hash !== undefined) {
    p.backoff.set(e.takeover_hash, at + 10_000);
  }
}

/** What the shell reported about one of our requests. */
export function applyProvisionEvent(
  p: MutableProvisionView,
  ev: ProvisionEvent,
): void {
  if (ev.step === "written" && ev.effect.takeover_hash !== undefined) {
    p.backoff.delete(ev.effect.takeover_hash); // done: decide again at once
  }
  const l = p.local.get(ev.req_id);
  if (!l) return;
  const set = (patch: Partial<LocalProvision>) =>
    p.local.set(ev.req_id, { ...l, ...patch });
  switch (ev.step) {
    case "opened":
      set({
        phase: "allocating",
        token_id_sha256: ev.token_id_sha256,
        token_revision: ev.token_revision,
      });
      break;
    case "open_refused":
      p.local.delete(ev.req_id);
      p.backoff.set(l.hint_hash, ev.at + ev.retry_after_ms);
      break;
    case "allocated":
      set({ phase: "allocated", allocation_id: ev.allocation_id });
      break;
    case "allocate_failed":
      set({ phase: "allocated", allocate_error: ev.error });
      break;
    case "written":
      if (ev.ok && ev.effect.closes) p.local.delete(ev.req_id);
      else {
        set({
          phase: "allocated",
          unconfirmed: ev.error !== null ? ev.effect : l.unconfirmed,
        });
      }
      break;
  }
  for (const [hash, until] of p.backoff) {
    if (until <= ev.at) p.backoff.delete(hash);
  }
}

/** A token of one of our requests is gone: consumed by a join (or expired). */
function noteTokenUsed(p: MutableProvisionView, hash: string): void {
  for (const [id, l] of p.local) {
    if (l.token_id_sha256 === hash && !l.token_used) {
      p.local.set(id, { ...l, token_used: true });
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
