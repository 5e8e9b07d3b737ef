/**
 * The Router step of SPEC §5.2, pure: a node with a router plugin asks it
 * about each PENDING attempt it could claim (one Route call per task and
 * `state_version`), waits for the answer before its own claim, and then
 * decides among the candidates the advice leaves. The advice is advisory:
 * it only ever narrows the capability filter's result (a rewritten
 * `requires` is matched on top of the task's own; a preferred node that is
 * no candidate is ignored), and a router that fails, times out, or narrows
 * to nobody leaves HRW's choice standing. Each node asks its own router, so
 * views may disagree as they may on membership: the claim transaction
 * decides, spill-over covers a task no node thinks is its own.
 * @module
 */
import type { Envelope, Requires } from "../schema.ts";
import type { RouteEffect } from "./effects.ts";
import type { RouteAdviceEvent } from "./events.ts";
import { isCandidate, isCapable, type NodeCaps } from "./filter.ts";
import { hrwBefore, hrwOwner } from "./hrw.ts";
import type { MutableView, NodeView } from "./view.ts";

/** What this node's router said of one PENDING attempt of a task. */
export interface RouteAdvice {
  /** The `state_version` of the PENDING envelope it was asked about. */
  readonly sv: number;
  /** False while the Route call is in flight. */
  readonly answered: boolean;
  /** The rewritten requires; null: none (or the call failed). */
  readonly requires: Requires | null;
  /** Most preferred first; empty: no preference. */
  readonly preferred: readonly string[];
  /** When the answer came (0 while asked). */
  readonly at: number;
}

/** Where a PENDING task stands with the router: ask it, wait for it, or decide among `capable`. */
export type Routed =
  | { readonly step: "ask"; readonly effect: RouteEffect }
  | { readonly step: "wait" }
  | {
    readonly step: "decide";
    readonly capable: readonly NodeCaps[];
    readonly preferred: readonly string[];
  };

const NONE: readonly string[] = [];

/** The candidates the router's advice leaves of `capable` (the filter's result). */
export function routed(
  view: NodeView,
  env: Envelope,
  capable: readonly NodeCaps[],
): Routed {
  if (!view.config.router) return { step: "decide", capable, preferred: NONE };
  const a = view.routes.get(env.task_id);
  if (a === undefined || a.sv !== env.state_version) {
    return {
      step: "ask",
      effect: {
        kind: "route",
        task_id: env.task_id,
        sv: env.state_version,
        requires: env.requires,
        candidates: capable.map((n) => ({
          node_id: n.node_id,
          caps: n.caps,
        })),
      },
    };
  }
  if (!a.answered) return { step: "wait" };
  return narrowed(a, capable);
}

/** Applies answered advice: never beyond the filter, never to nobody. */
function narrowed(
  a: RouteAdvice,
  capable: readonly NodeCaps[],
): Routed & { step: "decide" } {
  let out = capable;
  if (a.requires !== null) {
    const rw = a.requires;
    const n = capable.filter((c) => isCapable(c, rw));
    if (n.length > 0) out = n;
  }
  const preferred = a.preferred.length === 0
    ? NONE
    : a.preferred.filter((id) => out.some((c) => c.node_id === id));
  return { step: "decide", capable: out, preferred };
}

/**
 * The task's owner in this view: the first preferred node that takes work
 * (full or not, as HRW's owner), else the HRW owner of the candidates.
 */
export function routedOwner(
  taskId: string,
  d: Routed & { step: "decide" },
): string | undefined {
  for (const id of d.preferred) {
    const n = d.capable.find((c) => c.node_id === id);
    if (n && !n.draining) return id;
  }
  return hrwOwner(taskId, d.capable);
}

/**
 * How many candidates come before `self` for a task: the preferred ones in
 * their order, then the rest by HRW; all of them when the advice left
 * `self` out. Sets the spill-over delay (SPEC §5.5).
 */
export function routedRank(
  env: Envelope,
  d: Routed & { step: "decide" },
  self: string,
): number {
  const inside = d.capable.some((n) => n.node_id === self);
  const at = d.preferred.indexOf(self);
  let rank = 0;
  for (const n of d.capable) {
    if (n.node_id === self || !isCandidate(n, env.requires)) continue;
    const pi = d.preferred.indexOf(n.node_id);
    const before = !inside ||
      (at >= 0
        ? pi >= 0 && pi < at
        : pi >= 0 || hrwBefore(env.task_id, n.node_id, self));
    if (before) rank++;
  }
  return rank;
}

/** Records a Route call sent: no second one for the same attempt. */
export function noteRouteAsked(view: MutableView, e: RouteEffect): void {
  view.routes.set(e.task_id, {
    sv: e.sv,
    answered: false,
    requires: null,
    preferred: NONE,
    at: 0,
  });
}

/**
 * When a task's spill-over delay starts (SPEC §5.5): the node's first
 * sighting of it PENDING, or, with a router, the router's answer. The owner
 * waited for its own router too; timed from the sighting, a router slower
 * than `spill_after_ms` (one that times out after 2 s) would let every other
 * node take the task the moment its own answer came, racing the owner.
 */
export function spillSince(
  view: NodeView,
  env: Envelope,
  seenAt: number,
): number {
  const a = view.routes.get(env.task_id);
  return a !== undefined && a.sv === env.state_version
    ? Math.max(seenAt, a.at)
    : seenAt;
}

/** Stores the router's answer for the attempt it was asked about (a late one for an older attempt is dropped). */
export function noteRouteAdvice(view: MutableView, ev: RouteAdviceEvent): void {
  const a = view.routes.get(ev.task_id);
  if (a === undefined || a.sv !== ev.sv) return;
  view.routes.set(ev.task_id, {
    sv: ev.sv,
    answered: true,
    requires: ev.error === null ? ev.requires : null,
    preferred: ev.error === null ? ev.preferred : NONE,
    at: ev.at,
  });
}
