/**
 * Folding one key change into the view: validate it (zod, size limit, one
 * decode per change), keep only the newest revision of each record (and
 * honour tombstones of deletes applied ahead of the watch), and keep the
 * indexes (spec → tasks, dependents, pending order, open tasks) in step.
 */
import { hrwForget } from "./hrw.ts";
import type { z } from "zod";
import {
  CapsRecord,
  Claim,
  DispatchPaused,
  Envelope,
  NodeRecord,
  RECORD_MAX_BYTES,
  SpecRecord,
  TERMINAL_STATES,
} from "../schema.ts";
import { fastCheck, fastSafeParse } from "../schema_fast.ts";
import type { Keys } from "../keys.ts";
import type { Op } from "./effects.ts";
import type { KeyChange } from "./events.ts";
import type { MutableView, Versioned } from "./view.ts";
import { applyProvisionChange } from "./provision_apply.ts";
import { recordIdError } from "../record_ids.ts";

export function applyOwnOp(
  view: MutableView,
  keys: Keys,
  op: Op,
  revision: number,
  warnings: string[],
): void {
  // The watch covers the whole prefix: at or below its revision it already
  // delivered this write and whatever came after it (a delete, say); applying
  // the late ack could re-insert a record that is gone.
  if (revision <= view.watch_revision) return;
  if (op.op === "delete") {
    applyChange(view, keys, { key: op.key, revision, kv: null }, warnings);
    view.tombstones.set(op.key, revision);
    return;
  }
  const existing = lookup(view, keys, op.key);
  applyChange(view, keys, {
    key: op.key,
    revision,
    kv: {
      value: op.value,
      mod_revision: revision,
      create_revision: existing?.create_revision ?? revision,
      lease: op.lease ?? "0",
    },
  }, warnings);
}

export function lookup(
  view: MutableView,
  keys: Keys,
  key: string,
): Versioned<unknown> | undefined {
  const p = keys.parse(key);
  if (!p) return undefined;
  const map = mapFor(view, p.collection);
  return map?.get(p.id);
}

export function mapFor(
  view: MutableView,
  collection: string,
): Map<string, Versioned<unknown>> | null {
  switch (collection) {
    // Each map holds records of its collection's schema; the caller validates
    // values with SCHEMAS before storing, so widening to unknown is safe.
    case "nodes":
      return view.nodes as Map<string, Versioned<unknown>>;
    case "caps":
      return view.caps as Map<string, Versioned<unknown>>;
    case "specs":
      return view.specs as Map<string, Versioned<unknown>>;
    case "dispatch-queue":
      return view.tasks as Map<string, Versioned<unknown>>;
    case "claims":
      return view.claims as Map<string, Versioned<unknown>>;
    default:
      return null;
  }
}

const SCHEMAS: Record<string, z.ZodType> = {
  nodes: NodeRecord,
  caps: CapsRecord,
  specs: SpecRecord,
  "dispatch-queue": Envelope,
  claims: Claim,
};
/** The schemas' fast acceptance checks (schema_fast.ts): zod runs only on what they do not accept. */
const FAST = Object.fromEntries(
  Object.entries(SCHEMAS).map(([k, s]) => [k, fastCheck(s)]),
);

/** A change's key, parsed. */
export type ParsedKey = NonNullable<ReturnType<Keys["parse"]>>;

/** Folds one change into the view; returns its parsed key (null: not ours), for the caller's indexes. */
export function applyChange(
  view: MutableView,
  keys: Keys,
  c: KeyChange,
  warnings: string[],
): ParsedKey | null {
  const p = keys.parse(c.key);
  if (p !== null) applyParsed(view, p, c, warnings);
  return p;
}

function applyParsed(
  view: MutableView,
  p: ParsedKey,
  c: KeyChange,
  warnings: string[],
): void {
  if (applyProvisionChange(view, p.collection, p.id, c, warnings)) return;
  if (p.collection === "cluster") {
    if (p.id.startsWith("dispatching/")) {
      const spec = p.id.slice("dispatching/".length);
      if (c.kv === null) view.dispatching.delete(spec);
      else view.dispatching.add(spec);
    }
    if (p.id.startsWith("drain/")) {
      const node = p.id.slice("drain/".length);
      if (c.kv === null) view.draining.delete(node);
      else view.draining.set(node, c.kv.mod_revision);
    }
    if (p.id === "dispatch_paused") {
      if (c.kv === null) view.dispatch_paused = false;
      else {
        const r = DispatchPaused.safeParse(safeJson(c.kv.value));
        if (!r.success) {
          warnings.push(`${c.key}: invalid record, treated as paused`);
        }
        view.dispatch_paused = true;
      }
    }
    return;
  }
  const map = mapFor(view, p.collection);
  if (!map) return;
  const existing = map.get(p.id) as Versioned<unknown> | undefined;
  if (c.kv === null) {
    if (!existing || existing.mod_revision < c.revision) {
      map.delete(p.id);
      if (p.collection === "dispatch-queue") {
        unindexTask(view, p.id, existing?.value as Envelope | undefined);
      }
    }
    return;
  }
  if (existing && existing.mod_revision >= c.kv.mod_revision) return;
  // Tombstones are rare (our own deletes and read-backs, until the watch
  // passes them): no lookup, which hashes the whole key, while there are none.
  if (view.tombstones.size > 0) {
    const tomb = view.tombstones.get(c.key);
    if (tomb !== undefined && tomb >= c.kv.mod_revision) return;
  }
  const max = RECORD_MAX_BYTES[p.collection];
  if (c.kv.value.length > max) {
    return skip(
      view,
      p,
      c.key,
      c.kv,
      existing,
      `${c.key}: record skipped: ${c.kv.value.length} bytes, the limit is ${max}`,
      warnings,
    );
  }
  if (p.collection === "nodes" && c.kv.lease === "0") {
    warnings.push(
      `${c.key}: node record without a lease ignored for membership (a live node's record is bound to its lease)`,
    );
  }
  // One decode per change, however many views consume it (the simulator's
  // nodes share a change object; records are never mutated once decoded).
  const parsed = c.kv.decoded ??= fastSafeParse(
    SCHEMAS[p.collection],
    FAST[p.collection],
    safeJson(c.kv.value),
  );
  if (!parsed.success) {
    return skip(
      view,
      p,
      c.key,
      c.kv,
      existing,
      `${c.key}: invalid record skipped: ${
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)
          .slice(0, 3).join("; ")
      }`,
      warnings,
    );
  }
  const wrongId = recordIdError(p.collection, p.id, parsed.data);
  if (wrongId !== null) {
    return skip(
      view,
      p,
      c.key,
      c.kv,
      existing,
      `${c.key}: invalid record skipped: ${wrongId}`,
      warnings,
    );
  }
  map.set(p.id, {
    value: parsed.data,
    mod_revision: c.kv.mod_revision,
    create_revision: c.kv.create_revision,
    lease: c.kv.lease,
  });
  if (p.collection === "dispatch-queue") {
    indexTask(view, p.id, parsed.data as Envelope, existing !== undefined);
  }
}

/**
 * A record the view cannot use replaced the version it holds: the old one
 * goes (a decision from it could only fail its compare, and the failed
 * compare's read-back, skipped again, would send the same write again, in a
 * loop). A claim stays a claim whatever its value — its key exists, so
 * `version(claims/t) == 0` can never hold — as one no live node holds, which
 * the task's monitor removes (`strayClaimTxn`). Older versions arriving
 * later (a read-back ahead of the watch) are kept out by a tombstone.
 */
function skip(
  view: MutableView,
  p: ParsedKey,
  key: string,
  kv: NonNullable<KeyChange["kv"]>,
  existing: Versioned<unknown> | undefined,
  warning: string,
  warnings: string[],
): void {
  warnings.push(warning);
  if (p.collection === "claims") {
    view.claims.set(p.id, {
      value: { node_id: "", lease_id: kv.lease, claimed_at: 0, attempt: 1 },
      mod_revision: kv.mod_revision,
      create_revision: kv.create_revision,
      lease: kv.lease,
    });
    return;
  }
  if (existing === undefined) return;
  mapFor(view, p.collection)?.delete(p.id);
  view.tombstones.set(key, kv.mod_revision);
  if (p.collection === "dispatch-queue") {
    unindexTask(view, p.id, existing.value as Envelope);
  }
}

export function indexTask(
  view: MutableView,
  taskId: string,
  env: Envelope,
  known: boolean,
): void {
  if (!known) {
    addTo(view.spec_tasks, env.spec_id, taskId);
    for (const dep of env.depends_on) addTo(view.dependents, dep, taskId);
  }
  // Set order is the order tasks became PENDING; a re-queued task goes to the back.
  if (env.state === "PENDING") view.pending.add(taskId);
  else {
    view.pending.delete(taskId);
    // Reported once per stay in PENDING: a task claimed, then re-queued and
    // unschedulable again is reported again (and the set does not grow).
    view.unschedulable_reported.delete(taskId);
  }
  if (TERMINAL_STATES.has(env.state)) {
    view.open.delete(taskId);
    hrwForget(taskId);
  } else view.open.add(taskId);
}

export function unindexTask(
  view: MutableView,
  taskId: string,
  env: Envelope | undefined,
): void {
  const spec = taskId.slice(0, taskId.indexOf("."));
  removeFrom(view.spec_tasks, spec, taskId);
  // A spec id reused after its orphans went starts a new grace.
  if (!view.spec_tasks.has(spec)) view.orphans_seen.delete(spec);
  for (const dep of env?.depends_on ?? []) {
    removeFrom(view.dependents, dep, taskId);
  }
  view.pending.delete(taskId);
  view.open.delete(taskId);
  view.attempted.delete(taskId);
  view.unschedulable_reported.delete(taskId);
  view.orphans_refused.delete(taskId);
  hrwForget(taskId);
}

export function addTo(
  index: Map<string, Set<string>>,
  key: string,
  id: string,
) {
  let set = index.get(key);
  if (!set) index.set(key, set = new Set());
  set.add(id);
}

export function removeFrom(
  index: Map<string, Set<string>>,
  key: string,
  id: string,
) {
  const set = index.get(key);
  set?.delete(id);
  if (set && set.size === 0) index.delete(key);
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
