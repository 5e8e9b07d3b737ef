/**
 * The node's answers for degraded mode (SPEC §6): while etcd is unreachable
 * the CLI cannot read the cluster, so it asks the local node instead.
 *
 * - `POST /internal/dispatch-rejected`: the CLI refused a dispatch because
 *   etcd was unreachable; the node counts it in
 *   `boi_dispatch_rejected_etcd_unreachable_total`.
 * - `GET /internal/view[?spec=<spec_id>]`: the node's cached view (nodes with
 *   their caps and health, specs with task counts by state, one spec's tasks
 *   when asked), with `cache_age_ms` (now minus the node's last contact with
 *   etcd) so the caller can stamp it stale and refuse it past
 *   `membership_cache_ttl_s` (30 s).
 *
 * Both are served whether or not etcd is up; neither touches etcd.
 */
import { localBusy, selfHealth } from "../core/filter.ts";
import type { NodeView } from "../core/view.ts";
import {
  type Envelope,
  ID_PATTERN,
  TASK_STATES,
  type TaskState,
} from "../schema.ts";
import type { Metrics } from "./metrics.ts";
import { now as clock } from "./clock.ts";

/** The counter a rejected dispatch increments (SPEC §12). */
export const DISPATCH_REJECTED_METRIC =
  "boi_dispatch_rejected_etcd_unreachable_total";
/** How long a cached view may be used for read-only answers (SPEC §6). */
export const MEMBERSHIP_CACHE_TTL_S = 30;

export const DISPATCH_REJECTED_PATH = "/internal/dispatch-rejected";
export const VIEW_PATH = "/internal/view";

/**
 * What these endpoints need of a node. `BoiNode` has all of it; the etcd
 * members are optional so any narrower node type a router holds still fits
 * (then etcd counts as up and the cache as fresh).
 */
export interface DegradedNode {
  readonly view: NodeView;
  readonly metrics: Metrics;
  readonly deps: { readonly config: { readonly node_id: string } };
  readonly log?: {
    info(msg: string, fields?: Record<string, unknown>): void;
  };
  etcdStatus?(): { up: boolean; down_since: number | null };
  readonly lastEtcdContact?: number;
  pendingFlushEntries?(): number;
}

/** One node as the cached view knows it. */
export interface CachedNode {
  node_id: string;
  addr: string;
  caps: Record<string, string>;
  health: "ok" | "degraded" | null;
  workers_busy: number | null;
  workers_max: number | null;
  draining: boolean;
}

/** The document `GET /internal/view` returns. */
export interface CachedView {
  /** The node that answered. */
  node_id: string;
  generated_at: number;
  etcd_up: boolean;
  /** When this node found etcd unreachable; null while it answers. */
  etcd_down_since: number | null;
  /** Last watch event, keepalive or write that reached etcd. */
  last_etcd_contact: number;
  /** `generated_at - last_etcd_contact`. */
  cache_age_ms: number;
  membership_cache_ttl_s: number;
  dispatch_paused: boolean;
  /** This node's results waiting in its pending-flush file. */
  pending_flush: number;
  nodes: CachedNode[];
  specs: {
    spec_id: string;
    dispatched_at: number;
    counts: Record<TaskState, number>;
  }[];
  /** Present only with `?spec=`: that spec's envelopes, in the spec's order. */
  tasks?: Envelope[];
}

const DYNAMIC_FIELDS = new Set(["workers_busy", "workers_max", "health"]);

/** Builds the cached view from what the node holds in memory; reads no etcd. */
export function cachedView(
  node: DegradedNode,
  now: number,
  specId: string | null = null,
): CachedView {
  const v = node.view;
  const self = node.deps.config.node_id;
  const etcd = node.etcdStatus?.() ?? { up: true, down_since: null };
  const contact = node.lastEtcdContact ?? now;
  const nodes: CachedNode[] = [...v.nodes.values()].map((n) => {
    const id = n.value.node_id;
    const c = v.caps.get(id)?.value;
    const caps: Record<string, string> = { ...(c?.static ?? {}) };
    for (const [k, val] of Object.entries(c?.dynamic ?? {})) {
      if (!DYNAMIC_FIELDS.has(k) && typeof val === "string") caps[k] = val;
    }
    return {
      node_id: id,
      addr: n.value.addr,
      caps,
      // Our own health is known better than our last published record.
      health: id === self ? selfHealth(v, now) : c?.dynamic.health ?? null,
      workers_busy: id === self
        ? localBusy(v)
        : c?.dynamic.workers_busy ?? null,
      workers_max: c?.dynamic.workers_max ?? null,
      draining: v.draining.has(id),
    };
  }).sort((a, b) => a.node_id.localeCompare(b.node_id));
  const specs = [...v.specs.values()].map((s) => {
    const counts = zeroCounts();
    for (const id of v.spec_tasks.get(s.value.spec_id) ?? []) {
      const t = v.tasks.get(id);
      if (t) counts[t.value.state]++;
    }
    return {
      spec_id: s.value.spec_id,
      dispatched_at: s.value.dispatched_at,
      counts,
    };
  }).sort((a, b) =>
    a.dispatched_at - b.dispatched_at || a.spec_id.localeCompare(b.spec_id)
  );
  const out: CachedView = {
    node_id: self,
    generated_at: now,
    etcd_up: etcd.up,
    etcd_down_since: etcd.down_since,
    last_etcd_contact: contact,
    cache_age_ms: Math.max(0, now - contact),
    membership_cache_ttl_s: MEMBERSHIP_CACHE_TTL_S,
    dispatch_paused: v.dispatch_paused,
    pending_flush: node.pendingFlushEntries?.() ?? 0,
    nodes,
    specs,
  };
  if (specId !== null) {
    const spec = v.specs.get(specId)?.value;
    const order = spec?.task_ids ?? [...(v.spec_tasks.get(specId) ?? [])];
    out.tasks = order.map((id) => v.tasks.get(id)?.value).filter((
      e,
    ): e is Envelope => e !== undefined);
  }
  return out;
}

function zeroCounts(): Record<TaskState, number> {
  return Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<
    TaskState,
    number
  >;
}

/** The path of a request target exactly as sent (no normalization). */
function rawPath(url: string): { path: string; query: string } {
  const authority = url.indexOf("://");
  const slash = url.indexOf("/", authority < 0 ? 0 : authority + 3);
  const target = slash < 0 ? "/" : url.slice(slash);
  const q = target.indexOf("?");
  return q < 0
    ? { path: target, query: "" }
    : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/**
 * Answers the degraded-mode endpoints; returns null for any other path so
 * the main router carries on. `node` is null until the node has started.
 */
export function handleDegradedHttp(
  req: Request,
  node: DegradedNode | null,
  now: number = clock(),
): Response | null {
  const { path, query } = rawPath(req.url);
  if (path === DISPATCH_REJECTED_PATH) {
    if (req.method !== "POST") return notAllowed("POST");
    // Nobody reads the body; cancel it so the connection is not held.
    req.body?.cancel().catch(() => {});
    if (!node) return json(503, { status: "starting" });
    node.metrics.inc(DISPATCH_REJECTED_METRIC);
    node.log?.info("dispatch rejected: etcd unreachable (reported by the CLI)");
    return json(200, { counted: true });
  }
  if (path === VIEW_PATH) {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return notAllowed("GET, HEAD");
    }
    if (!node) return json(503, { status: "starting" });
    const spec = new URLSearchParams(query).get("spec");
    if (spec !== null && !ID_PATTERN.test(spec)) {
      return json(400, {
        error: `spec id must match ${ID_PATTERN.source}: got ${
          JSON.stringify(spec.slice(0, 80))
        }`,
      });
    }
    return json(200, cachedView(node, now, spec));
  }
  return null;
}

function notAllowed(allow: string): Response {
  return new Response("method not allowed\n", {
    status: 405,
    headers: { allow },
  });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
    },
  });
}
