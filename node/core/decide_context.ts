/**
 * The context one batch of decisions shares (decide.ts): membership, live
 * leases, free slots and the capable nodes per `requires`, each computed
 * once per batch and only if a decision asks for it.
 */
import type { Keys } from "../keys.ts";
import { isCapable, liveNodeCaps, localBusy, type NodeCaps } from "./filter.ts";
import type { NodeView, Versioned } from "./view.ts";
import type { Envelope, Requires } from "../schema.ts";

/**
 * Per-batch context: membership, free slots and the capable nodes per
 * `requires` computed once (a sweep decides every open task), claims issued
 * so far counted.
 */
export interface DecideContext {
  readonly at: number;
  readonly keys: Keys;
  readonly members: NodeCaps[];
  /** Live members for HRW monitor selection: a node record under a lease, with a caps record. */
  readonly memberIds: string[];
  /** Leases of live node records: a claim under any other lease is stray. */
  readonly liveLeases: ReadonlySet<string>;
  /** Local slots free when the batch began. */
  readonly free: number;
  /** Claims issued earlier in this batch, not yet visible in `view.inflight`. */
  claimed: number;
  /** Capable members by canonical `requires` (decide.ts's `capableFor`). */
  readonly capable: Map<string, NodeCaps[]>;
  /** Computed on first need: see `hasOwnBacklog`. */
  ownBacklog?: boolean;
  /** Other nodes' tasks this batch may take, claimed at its end (decide.ts's `claimSteals`). */
  readonly steals: Versioned<Envelope>[];
}

export function decideContext(
  view: NodeView,
  keys: Keys,
  at: number,
): DecideContext {
  return new BatchContext(view, keys, at);
}

/**
 * Membership, leases and free slots are computed on first use: most
 * batches (another node's task moved on, one of our workers progressed)
 * never need them, and every node decides every task's watch events.
 * Handlers do not change the view while a batch is decided, so a late
 * computation sees what an early one would have.
 */
class BatchContext implements DecideContext {
  claimed = 0;
  readonly capable = new Map<string, NodeCaps[]>();
  ownBacklog?: boolean;
  readonly steals: Versioned<Envelope>[] = [];
  #members?: NodeCaps[];
  #memberIds?: string[];
  #liveLeases?: ReadonlySet<string>;
  #free?: number;

  constructor(
    readonly view: NodeView,
    readonly keys: Keys,
    readonly at: number,
  ) {}

  get members(): NodeCaps[] {
    return this.#members ??= liveNodeCaps(this.view, this.at);
  }

  get memberIds(): string[] {
    return this.#memberIds ??= liveMembers(this.view);
  }

  get liveLeases(): ReadonlySet<string> {
    if (this.#liveLeases) return this.#liveLeases;
    const leases = new Set<string>();
    for (const n of this.view.nodes.values()) {
      if (n.lease !== "0") leases.add(n.lease);
    }
    return this.#liveLeases = leases;
  }

  get free(): number {
    return this.#free ??= this.view.config.workers_max - localBusy(this.view);
  }
}

/**
 * Who counts as a member: a node record bound to a lease (etcd deletes it
 * with the lease) and a caps record. A record written by hand without a
 * lease would otherwise "monitor" tasks forever and never act.
 */
export function liveMembers(view: NodeView): string[] {
  const ids: string[] = [];
  for (const [id, n] of view.nodes) {
    if (n.lease !== "0" && view.caps.has(id)) ids.push(id);
    else if (id === view.config.node_id && view.lease_id !== null) ids.push(id);
  }
  return ids;
}

/** True once this batch's claims have filled the node's free slots. */
export function isFull(ctx: DecideContext): boolean {
  return ctx.claimed >= ctx.free;
}

/** The members that satisfy `requires`, memoized per batch (most tasks share one). */
export function capableFor(ctx: DecideContext, requires: Requires): NodeCaps[] {
  const keys = Object.keys(requires);
  const key = keys.length === 0
    ? ""
    : keys.sort().map((k) => `${k}\x1f${requires[k]}`).join("\x1e");
  let out = ctx.capable.get(key);
  if (!out) {
    out = ctx.members.filter((n) => isCapable(n, requires));
    ctx.capable.set(key, out);
  }
  return out;
}
