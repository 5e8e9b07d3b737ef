/**
 * A node's router plugin in the simulator (SPEC §5.2): it answers each Route
 * call late or never (the shell's deadline then fails it), and its advice is
 * whatever a faulty router could say: keep the requires or rewrite them to
 * nobody's caps, prefer a candidate, prefer nodes that do not exist. Routing
 * is advisory, so no answer may lose, duplicate or strand a task.
 */
import type { RouteEffect } from "../core/mod.ts";
import { Rng } from "./rng.ts";
import type { SimNode } from "./sim_node.ts";

/** The shell's Route deadline (node/exec/grpc_router.ts). */
const ROUTE_TIMEOUT_MS = 2000;

export class RouterModel {
  readonly #rng: Rng;
  constructor(readonly n: SimNode) {
    // A stream of its own: routed schedules keep their other choices.
    let h = n.w.seed ^ 0x7a11e;
    for (const ch of n.id) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
    this.#rng = new Rng(h);
  }

  route(e: RouteEffect): void {
    const r = this.#rng;
    const answer = (
      requires: Record<string, string> | null,
      preferred: string[],
      error: string | null,
    ) => ({
      type: "route_advice" as const,
      at: this.n.now,
      task_id: e.task_id,
      sv: e.sv,
      requires,
      preferred,
      error,
    });
    if (r.chance(0.05)) {
      return this.n.later(ROUTE_TIMEOUT_MS, () =>
        this.n.push({
          ...answer(null, [], "deadline exceeded"),
          at: this.n.now,
        }));
    }
    const ids = e.candidates.map((c) => c.node_id);
    const preferred = r.pick([
      () => [],
      () => ids.length > 0 ? [r.pick(ids)] : [],
      () => ["node-gone", ...ids.slice().reverse()],
    ])();
    const requires = r.chance(0.2) ? { "x-nobody": "1" } : e.requires;
    this.n.later(
      this.n.w.lat(),
      () =>
        this.n.push({ ...answer(requires, preferred, null), at: this.n.now }),
    );
  }
}
