/** The capability filter of SPEC §5.1: who may run a task at all, and who may run it now. */
import type { Requires } from "../schema.ts";
import type { NodeView } from "./view.ts";

export interface NodeCaps {
  node_id: string;
  caps: Record<string, string>;
  health: "ok" | "degraded";
  /** An operator is draining it: capable, but takes nothing new. */
  draining: boolean;
  workers_busy: number;
  workers_max: number;
}

/**
 * Degraded while `claim_failure_limit` of this node's claims expired within
 * `claim_failure_window_ms`, until `claim_failure_cooldown_ms` after the last of them;
 * likewise after the workspace Prepares of `claim_failure_limit` tasks failed in a row.
 */
export function selfHealth(view: NodeView, at: number): "ok" | "degraded" {
  if (!view.plugins_healthy) return "degraded";
  const c = view.config;
  if (prepareFailing(view, at)) return "degraded";
  const xs = view.claim_expiries;
  for (let i = 0; i + c.claim_failure_limit - 1 < xs.length; i++) {
    const last = xs[i + c.claim_failure_limit - 1];
    if (
      last - xs[i] <= c.claim_failure_window_ms &&
      at < last + c.claim_failure_cooldown_ms
    ) {
      return "degraded";
    }
  }
  return "ok";
}

/** Prepares of `claim_failure_limit` tasks failed in a row, the last within the cooldown. */
export function prepareFailing(view: NodeView, at: number): boolean {
  const c = view.config;
  const xs = view.prepare_failures;
  return xs.length >= c.claim_failure_limit &&
    at < xs[xs.length - 1].at + c.claim_failure_cooldown_ms;
}

/**
 * This node's last workspace Prepare of the task failed by itself (it is in
 * `prepare_failures`: none has succeeded here since): its retry is left to
 * the other nodes first (decide.ts's `decidePending`).
 */
export function failedHere(view: NodeView, taskId: string): boolean {
  return view.prepare_failures.some((f) => f.task_id === taskId);
}

/** Effective capabilities of every live node; this node's own from local knowledge. */
export function liveNodeCaps(view: NodeView, at: number): NodeCaps[] {
  const out: NodeCaps[] = [];
  for (const id of view.nodes.keys()) {
    if (id === view.config.node_id) {
      if (view.lease_id === null) continue;
      out.push({
        node_id: id,
        caps: ownCaps(view, id),
        health: selfHealth(view, at),
        draining: view.draining.has(id),
        workers_busy: localBusy(view),
        workers_max: view.config.workers_max,
      });
      continue;
    }
    const c = view.caps.get(id)?.value;
    if (!c) continue; // caps not published yet: not a candidate
    const caps: Record<string, string> = { ...c.static };
    for (const [k, v] of Object.entries(c.dynamic)) {
      if (typeof v === "string" && k !== "health") caps[k] = v;
    }
    out.push({
      node_id: id,
      caps,
      health: c.dynamic.health,
      draining: view.draining.has(id),
      workers_busy: c.dynamic.workers_busy,
      workers_max: c.dynamic.workers_max,
    });
  }
  return out;
}

/**
 * This node's capabilities as the others match them: its configured static
 * caps, plus `cluster_admin` as its published caps record says (only the
 * admin path sets it, in the shell: config never holds it). Without it an
 * admin node was capable of a `requires: {cluster_admin: "true"}` task in
 * every view but its own, and nobody claimed it.
 */
function ownCaps(view: NodeView, id: string): Record<string, string> {
  const admin = view.caps.get(id)?.value.static.cluster_admin;
  return admin === undefined
    ? { ...view.config.static_caps }
    : { ...view.config.static_caps, cluster_admin: admin };
}

/**
 * Slots in use: worker processes not yet exited plus claims in flight. A
 * worker whose process ended frees its slot at once, while its result is
 * still being written (short tasks would otherwise hold a slot for two etcd
 * round trips after they are done).
 */
export function localBusy(view: NodeView): number {
  let n = 0;
  for (const w of view.workers.values()) if (w.phase !== "exited") n++;
  for (const reason of view.inflight.values()) if (reason === "claim") n++;
  return n;
}

/** Every `requires` pair equals the node's cap and the node is healthy. */
export function isCapable(node: NodeCaps, requires: Requires): boolean {
  if (node.health === "degraded") return false;
  for (const [k, v] of Object.entries(requires)) {
    if (node.caps[k] !== v) return false;
  }
  return true;
}

/** Capable and with a free worker slot: a candidate in the sense of SPEC §5.1. */
export function isCandidate(node: NodeCaps, requires: Requires): boolean {
  return isCapable(node, requires) && !node.draining &&
    node.workers_busy < node.workers_max;
}
