/** The capability filter of SPEC §5.1: who may run a task at all, and who may run it now. */
import type { Requires } from "../schema.ts";
import type { NodeView } from "./view.ts";

export interface NodeCaps {
  node_id: string;
  caps: Record<string, string>;
  health: "ok" | "degraded";
  workers_busy: number;
  workers_max: number;
}

/** Effective capabilities of every live node; this node's own from local knowledge. */
export function liveNodeCaps(view: NodeView): NodeCaps[] {
  const out: NodeCaps[] = [];
  for (const id of view.nodes.keys()) {
    if (id === view.config.node_id) {
      if (view.lease_id === null) continue;
      out.push({
        node_id: id,
        caps: { ...view.config.static_caps },
        health: "ok",
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
      workers_busy: c.dynamic.workers_busy,
      workers_max: c.dynamic.workers_max,
    });
  }
  return out;
}

/** Workers running here plus claims in flight: the capacity this node has promised. */
export function localBusy(view: NodeView): number {
  let n = view.workers.size;
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
  return isCapable(node, requires) && node.workers_busy < node.workers_max;
}
