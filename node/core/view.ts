/**
 * NodeView: what one node knows, built from the etcd watch plus its own local
 * state. Handlers only read it (Readonly types); the event loop applies each
 * event with `applyEvent` between handler calls, so a handler always sees one
 * consistent snapshot.
 */
import type {
  CapsRecord,
  Claim,
  Envelope,
  NodeRecord,
  SpecRecord,
} from "../schema.ts";
import type { TxnReason } from "./effects.ts";
import type { RouteAdvice } from "./routing.ts";
import type { Landed, Unsure } from "./unsure.ts";
import {
  emptyProvisionView,
  type MutableProvisionView,
  type ProvisionConfig,
  type ProvisionView,
} from "./provision_types.ts";

/** A decoded etcd record together with the revisions it was read at. */
export interface Versioned<T> {
  readonly value: T;
  readonly mod_revision: number;
  readonly create_revision: number;
  /** Lease id as a decimal string; "0" for none. */
  readonly lease: string;
}

/** Tuning knobs of the decision logic; every one comes from config. */
export interface CoreConfig {
  readonly node_id: string;
  /** @default 4 */
  readonly workers_max: number;
  /** Static capabilities (os and arch detected, plus BOI_CAPS). */
  readonly static_caps: Readonly<Record<string, string>>;
  /** @default 1000 */
  readonly spill_after_ms: number;
  /** @default 100 */
  readonly spill_step_ms: number;
  /** First retry delay; doubles per retry, capped at 60 s. @default 1000 */
  readonly retry_backoff_ms: number;
  /** Claim expiries within this window count toward the cooldown. @default 300000 */
  readonly claim_failure_window_ms: number;
  /** How many expiries in the window make the node degraded. @default 3 */
  readonly claim_failure_limit: number;
  /** How long the node stays degraded after the limit is hit. @default 300000 */
  readonly claim_failure_cooldown_ms: number;
  /** Grace between SIGTERM and SIGKILL when a task is cancelled. @default 1000 */
  readonly cancel_grace_ms: number;
  /**
   * How long after the Pool reported Started the claimant writes RUNNING (at
   * the next decision from then on, a tick at the latest). A task that ends
   * sooner goes CLAIMED→DONE in one write, its `started_at` in it: one
   * revision and one watch event on every node fewer per short task. 0
   * writes RUNNING at once.
   * @default 50
   */
  readonly running_write_after_ms?: number;
  /**
   * How often a tick re-decides every open task (SPEC §6's periodic sweep);
   * the ticks between decide only this node's workers and the oldest
   * PENDING tasks (spill-over, backoff, free slots), so a tick's cost does
   * not grow with the backlog.
   * @default 1000
   */
  readonly sweep_every_ms?: number;
  /**
   * How long after its last task ended a finished spec stays in etcd (and
   * in every view); 0 keeps it forever (retire.ts).
   * @default 604800000 (7 days)
   */
  readonly spec_retention_ms?: number;
  /**
   * How long this node sees a spec id with envelopes and no record (a
   * dispatcher killed between its transactions, whose take-back never ran)
   * before retention deletes them (retire_orphans.ts; off with
   * `spec_retention_ms` 0). No node claims such a task, so until then they
   * only take room. A dispatch still writing holds a marker and is never
   * cut; the grace covers a dispatcher without one.
   * @default 3600000 (1 hour)
   */
  readonly orphan_grace_ms?: number;
  /**
   * Whether the events a node emits for tasks it only watched (its monitor's
   * `task.dispatched`, `task.cancelled` of a waiting task) are taken by
   * anything: a hooks plugin, or the debug log. Without, they are not
   * computed (hook_events.ts's `watchedEvents`). @default true
   */
  readonly watched_task_events?: boolean;
  /**
   * Set on a node that runs a router plugin: PENDING tasks it could claim
   * are routed first (routing.ts, SPEC §5.2). @default false
   */
  readonly router?: boolean;
  /** Set on a node that runs a provisioner plugin (provision.ts). @default null */
  readonly provision?: ProvisionConfig | null;
}

/**
 * preparing: workspace Prepare in flight; prepared: workspace ready, Spawn not
 * decided yet; starting: Spawn sent; running: the Pool reported Started.
 */
export type WorkerPhase =
  | "preparing"
  | "prepared"
  | "starting"
  | "running"
  | "exited";

/** Result of a finished worker, kept until it is committed or refused. */
export interface WorkerResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly error: string | null;
  /**
   * The attempt was lost to the machinery (plugin crash, workspace failure),
   * not ended by the task: it is re-queued without spending a retry.
   */
  readonly lost: boolean;
  readonly finished_at: number;
}

/** A workspace Prepare that failed by itself (see `prepare_failures`). */
export interface PrepareFailure {
  readonly at: number;
  readonly task_id: string;
}

/** A worker process this node started for a claim it won. */
export interface Worker {
  readonly task_id: string;
  /** Claim create revision: the fencing token handed to the Pool. */
  readonly fence: number;
  readonly attempt: number;
  readonly phase: WorkerPhase;
  readonly pid: number | null;
  readonly started_at: number | null;
  readonly result: WorkerResult | null;
  /**
   * A kill (or an abort) was sent; do not send another. Cleared when the Pool
   * reports Started: a kill that overtook its Spawn found nothing to kill.
   */
  readonly killing: boolean;
  /** The prepared workspace (from `worker_prepared`). */
  readonly workdir: string | null;
  readonly ws_env: Readonly<Record<string, string>> | null;
  /** The node lease the claim was made under: one lost lease is one claim-failure incident. */
  readonly lease: string;
}

export interface NodeView {
  readonly config: CoreConfig;
  /** The node's live lease, or null while unregistered or after losing it. */
  readonly lease_id: string | null;
  /**
   * Until when the lease is known to live (last keepalive sent + TTL). Past
   * it (a frozen node just thawed, say) the claims may be gone already:
   * nothing is started until a keepalive or the loss says which.
   */
  readonly lease_valid_until: number;
  readonly nodes: ReadonlyMap<string, Versioned<NodeRecord>>;
  readonly caps: ReadonlyMap<string, Versioned<CapsRecord>>;
  readonly specs: ReadonlyMap<string, Versioned<SpecRecord>>;
  readonly tasks: ReadonlyMap<string, Versioned<Envelope>>;
  /** task ids of each spec, for re-deciding dependents. */
  readonly spec_tasks: ReadonlyMap<string, ReadonlySet<string>>;
  /** Tasks naming each task in `depends_on`: who to re-decide when it ends (O(1), not a spec scan). */
  readonly dependents: ReadonlyMap<string, ReadonlySet<string>>;
  /** PENDING tasks in the order they became PENDING: what to claim when capacity frees up. */
  readonly pending: ReadonlySet<string>;
  /** Tasks not in a terminal state: what the periodic sweep looks at (finished ones pile up). */
  readonly open: ReadonlySet<string>;
  readonly claims: ReadonlyMap<string, Versioned<Claim>>;
  readonly workers: ReadonlyMap<string, Worker>;
  /** This node's router's advice per PENDING task (routing.ts); pruned with `pending_since`. */
  readonly routes: ReadonlyMap<string, RouteAdvice>;
  /** First local sighting of (task, state_version) as PENDING: spill-over clock. */
  readonly pending_since: ReadonlyMap<string, { sv: number; at: number }>;
  /** Tasks with an etcd transaction in flight: one write per task at a time. */
  readonly inflight: ReadonlyMap<string, TxnReason>;
  readonly dispatch_paused: boolean;
  /** Tasks already reported unschedulable by this node (emit once). */
  readonly unschedulable_reported: ReadonlySet<string>;
  /** Results parked in the pending-flush file: task id → fence. The file owns them now. */
  readonly flushed: ReadonlyMap<string, number>;
  /**
   * The last fence this node prepared a worker for, per task: one fence is
   * one attempt, run at most once here (a stale view after a flush replay
   * still shows the claim CLAIMED).
   */
  readonly attempted: ReadonlyMap<string, number>;
  /** When this node's own claims expired (SPEC §6 claim-failure cooldown), one entry per lost lease. */
  readonly claim_expiries: readonly number[];
  /** Leases already counted in `claim_expiries`. */
  readonly expired_leases: ReadonlySet<string>;
  /**
   * This node's last workspace Prepares that failed, with none succeeding
   * since, one per task (at most `claim_failure_limit` kept): the cooldown
   * counts them as it counts expired claims, or a node whose disk is full
   * fails every task it claims at once and claims the next one. Distinct
   * tasks, so one task whose Prepare always fails (its own fault) cannot
   * degrade the node by itself.
   */
  readonly prepare_failures: readonly PrepareFailure[];
  /** Nodes an operator asked to drain → the request's mod revision. */
  readonly draining: ReadonlyMap<string, number>;
  /** False while one of this node's plugins is not ready: the node is degraded. */
  readonly plugins_healthy: boolean;
  /** The health this node last announced (node.degraded / node.healed). */
  readonly reported_health: "ok" | "degraded";
  /** Highest revision delivered by the watch (or the last relist). */
  readonly watch_revision: number;
  /**
   * A claim of ours lost at this revision: the view lags etcd, so other
   * nodes' tasks are not taken until the watch has caught up with it.
   */
  readonly steal_after_revision: number;
  /** The audit hooks queue is full (SPEC §8 back-pressure): no claims, no commits. */
  readonly hooks_stalled: boolean;
  /** Provisioning requests, failure records and this node's own requests. */
  readonly provision: ProvisionView;
  /** When a tick last swept every open task. */
  readonly swept_at: number;
  /** The tick being handled sweeps every open task (set by the reducer). */
  readonly sweep_now: boolean;
  /** When a tick last looked for finished specs to retire (retire.ts). */
  readonly retired_at: number;
  /** The tick being handled looks for them (set by the reducer). */
  readonly retire_now: boolean;
  /** Spec ids whose dispatch of several transactions is under way (`cluster/dispatching/*`). */
  readonly dispatching: ReadonlySet<string>;
  /**
   * Spec ids with envelopes and no record, and when a retention pass first
   * saw them so (retire_orphans.ts: the orphan grace runs on this clock).
   */
  readonly orphans_seen: ReadonlyMap<string, number>;
  /**
   * Orphan envelopes whose delete found a spec record this view cannot read
   * (invalid), with the mod revision compared: the same compare would fail
   * on every pass, so it is not sent again until the envelope changes.
   */
  readonly orphans_refused: ReadonlyMap<string, number>;
  /** Our writes answered with an error, not a verdict: did they land? (unsure.ts) */
  readonly unsure: ReadonlyMap<string, Unsure>;
  /** Those the event just applied showed landed: their events are owed (set by the reducer). */
  readonly landed: readonly Landed[];
}

/** The mutable form the event loop owns. */
export interface MutableView extends NodeView {
  lease_id: string | null;
  lease_valid_until: number;
  nodes: Map<string, Versioned<NodeRecord>>;
  caps: Map<string, Versioned<CapsRecord>>;
  specs: Map<string, Versioned<SpecRecord>>;
  tasks: Map<string, Versioned<Envelope>>;
  spec_tasks: Map<string, Set<string>>;
  dependents: Map<string, Set<string>>;
  pending: Set<string>;
  open: Set<string>;
  claims: Map<string, Versioned<Claim>>;
  workers: Map<string, Worker>;
  pending_since: Map<string, { sv: number; at: number }>;
  routes: Map<string, RouteAdvice>;
  inflight: Map<string, TxnReason>;
  dispatch_paused: boolean;
  unschedulable_reported: Set<string>;
  flushed: Map<string, number>;
  attempted: Map<string, number>;
  claim_expiries: number[];
  prepare_failures: PrepareFailure[];
  expired_leases: Set<string>;
  draining: Map<string, number>;
  plugins_healthy: boolean;
  reported_health: "ok" | "degraded";
  hooks_stalled: boolean;
  /** Revisions of deletes we applied ahead of the watch, per key. */
  tombstones: Map<string, number>;
  /** Highest revision delivered by the watch; tombstones at or below it are pruned. */
  watch_revision: number;
  provision: MutableProvisionView;
  swept_at: number;
  steal_after_revision: number;
  sweep_now: boolean;
  retired_at: number;
  retire_now: boolean;
  dispatching: Set<string>;
  orphans_seen: Map<string, number>;
  orphans_refused: Map<string, number>;
  unsure: Map<string, Unsure>;
  landed: Landed[];
}

export function emptyView(config: CoreConfig): MutableView {
  return {
    config,
    lease_id: null,
    lease_valid_until: 0,
    nodes: new Map(),
    caps: new Map(),
    specs: new Map(),
    tasks: new Map(),
    spec_tasks: new Map(),
    dependents: new Map(),
    pending: new Set(),
    open: new Set(),
    claims: new Map(),
    workers: new Map(),
    pending_since: new Map(),
    routes: new Map(),
    inflight: new Map(),
    dispatch_paused: false,
    unschedulable_reported: new Set(),
    flushed: new Map(),
    attempted: new Map(),
    claim_expiries: [],
    prepare_failures: [],
    expired_leases: new Set(),
    draining: new Map(),
    plugins_healthy: true,
    reported_health: "ok",
    hooks_stalled: false,
    tombstones: new Map(),
    watch_revision: 0,
    provision: emptyProvisionView(),
    swept_at: Number.NEGATIVE_INFINITY,
    steal_after_revision: 0,
    sweep_now: false,
    // The first pass one interval after start: the view has caught up by then.
    retired_at: 0,
    retire_now: false,
    dispatching: new Set(),
    orphans_seen: new Map(),
    orphans_refused: new Map(),
    unsure: new Map(),
    landed: [],
  };
}
