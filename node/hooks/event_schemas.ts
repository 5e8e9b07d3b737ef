/**
 * The event kinds of SPEC §8 and the payload of each: one zod schema per
 * kind is the one definition (docs/events.md is rendered from these, and a
 * test keeps it in step). Pure: the core imports the types.
 * @module
 */
import { z } from "zod";
import { type FastCheck, fastCheck } from "../schema_fast.ts";

const taskId = z.string().describe("full task id, `<spec_id>.<id>`");
const specId = z.string().describe("spec id");
const nodeId = z.string().describe("node id");
const attempt = z.number().int().positive().describe(
  "claim number of this attempt (1 for the first claim)",
);
const fence = z.number().int().describe(
  "fencing token: the etcd revision the claim committed at",
);

/** Payload schema of every kind, in SPEC §8 order. */
export const EVENT_PAYLOADS = {
  "task.dispatched": z.object({
    task_id: taskId,
    spec_id: specId,
    state: z.enum(["BLOCKED", "PENDING"]).describe("state it was created in"),
    requires: z.record(z.string(), z.string()).describe("merged requires"),
    dispatched_at: z.number().int().describe("ms since the Unix epoch"),
  }).describe(
    "A task was written by `boi dispatch`. Emitted once per task by the HRW monitor of the task " +
      "(first-ranked live node) when it sees the spec record committed in its watch.",
  ),
  "task.claimed": z.object({
    task_id: taskId,
    spec_id: specId,
    node_id: nodeId.describe("the claimant"),
    attempt,
    fence,
  }).describe("PENDING→CLAIMED committed by the claimant, which emits it."),
  "task.started": z.object({
    task_id: taskId,
    spec_id: specId,
    node_id: nodeId.describe("the claimant"),
    attempt,
    fence,
    started_at: z.number().int().nullable().describe("ms since the Unix epoch"),
  }).describe(
    "CLAIMED→RUNNING committed by the claimant (the Pool reported Started); for a task that ended first, from its CLAIMED→DONE/FAILED write, just before its end event.",
  ),
  "task.completed": z.object({
    task_id: taskId,
    spec_id: specId,
    node_id: nodeId.describe("the node that ran it"),
    attempt,
    fence,
    exit_code: z.number().int().nullable(),
    started_at: z.number().int().nullable(),
    finished_at: z.number().int().nullable(),
    duration_ms: z.number().int().nullable().describe(
      "finished_at − started_at",
    ),
  }).describe("RUNNING→DONE committed by the claimant."),
  "task.failed": z.object({
    task_id: taskId,
    spec_id: specId,
    node_id: nodeId.nullable().describe(
      "the node that ran the attempt; null when the last attempt was lost to a lease expiry",
    ),
    attempt,
    exit_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    final: z.boolean().describe(
      "true: the task is FAILED; false: this attempt failed and the task is PENDING again for a retry",
    ),
    retry_at: z.number().int().nullable().describe(
      "earliest next claim (ms since the epoch) when not final",
    ),
  }).describe(
    "An attempt failed. Emitted by the claimant on its commit, or by the task's monitor when a lease " +
      "expiry used up the last attempt.",
  ),
  "task.cancelled": z.object({
    task_id: taskId,
    spec_id: specId,
    node_id: nodeId.nullable().describe("the node that ran it, if any"),
    reason: z.enum(["user", "dependency"]),
    last_error: z.string().nullable(),
  }).describe(
    "The task ended CANCELLED: by its claimant after killing the worker, by the task's monitor for a " +
      "claim lost while cancel was requested or for a failed dependency, or (a waiting task cancelled by " +
      "`boi tasks cancel`, which writes it itself) by the task's monitor when it sees the change.",
  ),
  "task.reassigned": z.object({
    task_id: taskId,
    spec_id: specId,
    from_node_id: nodeId.describe("the claimant whose lease expired"),
    attempts: z.number().int().nonnegative(),
    max_attempts: z.number().int().positive(),
    last_error: z.string().nullable(),
  }).describe(
    "CLAIMED/RUNNING→PENDING after the claimant's lease expired, committed and emitted by the task's monitor.",
  ),
  "task.unschedulable": z.object({
    task_id: taskId,
    requires: z.record(z.string(), z.string()),
  }).describe(
    "No live node is capable of the task; emitted once by the task's monitor.",
  ),
  "task.result_superseded": z.object({
    task_id: taskId,
    fence: fence.describe("the fence of the refused result"),
  }).describe(
    "A finished worker's result could not be written because its claim was lost (someone else owns the " +
      "task now); emitted by the node that ran it.",
  ),
  "node.joined": z.object({
    node_id: nodeId,
    lease_id: z.string().describe("the node lease, decimal"),
  }).describe(
    "A node registered (first start or again after losing its lease); emitted by that node.",
  ),
  "node.left": z.object({
    node_id: nodeId,
  }).describe(
    "A node's record vanished (lease expired or graceful stop); emitted by the HRW monitor of the node id " +
      "among the remaining live nodes.",
  ),
  "node.degraded": z.object({
    node_id: nodeId,
    reason: z.string(),
  }).describe(
    "The node marked itself `health: degraded` (claim-failure cooldown, a plugin not ready); emitted by it.",
  ),
  "node.healed": z.object({
    node_id: nodeId,
  }).describe("The node is `health: ok` again; emitted by it."),
  "plugin.unstable": z.object({
    plugin: z.string().describe("plugin name"),
    crashes: z.array(z.number().int()).describe("crash times in the window"),
    reason: z.string().nullable(),
  }).describe(
    "A plugin spent its crash budget and is no longer restarted; emitted by its node.",
  ),
  "provision.requested": z.object({
    req_id: z.string().describe(
      "`<hint hash prefix>-<attempt>-<open time in s, base 36>`",
    ),
    hint: z.record(z.string(), z.string()).describe(
      "the requires the new node must have",
    ),
    requested_at: z.number().int().describe("ms since the Unix epoch"),
    deadline_at: z.number().int().describe(
      "the node must join (and claim) by then",
    ),
  }).describe(
    "An admin node opened a provisioning request and is calling its Provisioner's Allocate " +
      "(SPEC §10); emitted by that node once the request is in etcd.",
  ),
  "provision.fulfilled": z.object({
    req_id: z.string(),
    hint: z.record(z.string(), z.string()),
    node_id: nodeId.describe("the node that joined"),
    allocation_id: z.string().nullable().describe("the Provisioner's id"),
    latency_ms: z.number().int().nonnegative().nullable().describe(
      "request to the new node's first claim; null: it joined but claimed nothing by the deadline",
    ),
  }).describe(
    "A node with the hint's caps joined and claimed (SPEC §10); `fulfilled_by` is written by CAS.",
  ),
  "provision.failed": z.object({
    req_id: z.string().nullable(),
    hint: z.record(z.string(), z.string()),
    reason: z.enum(["deadline", "allocate_failed", "cooldown"]).describe(
      "`deadline`: no join in time (Deallocate sent); `allocate_failed`: Allocate errored; " +
        "`cooldown`: the failure limit was reached, no Allocate until `cooldown_until`",
    ),
    error: z.string().optional(),
    allocation_id: z.string().nullable().optional(),
    failures: z.number().int().positive().describe(
      "consecutive failures of this requires",
    ),
    cooldown_until: z.number().int().optional(),
  }).describe(
    "A provisioning request failed, or its requires went into cooldown (SPEC §10); both are " +
      "emitted when the failure that starts a cooldown is recorded.",
  ),
  "cluster.partition_detected": z.object({
    node_id: nodeId,
    since: z.number().int().describe(
      "when etcd stopped answering (ms since the epoch)",
    ),
    error: z.string(),
  }).describe(
    "This node cannot reach etcd (nothing succeeded for half a lease); emitted by it, delivered to its " +
      "local hooks plugin while the partition lasts.",
  ),
  "cluster.partition_healed": z.object({
    node_id: nodeId,
    down_ms: z.number().int().nonnegative(),
  }).describe("This node reaches etcd again; emitted by it."),
  "cluster.mint_denied": z.object({
    node_id: nodeId.describe("the node asked to mint"),
    reason: z.string(),
  }).describe(
    "A join-token mint was refused (no `cluster_admin`, SPEC §10; emitted once admission exists).",
  ),
  "hook.queue.saturated": z.object({
    plugin: z.string(),
    unacked: z.number().int().nonnegative(),
    window: z.number().int().positive().describe("hooks_backpressure_window"),
  }).describe(
    "The audit queue of a plugin reached the back-pressure window: the node stops claiming and committing " +
      "until acks catch up. Once per stall.",
  ),
  "hook.gap.detected": z.object({
    plugin: z.string(),
    from_seq: z.number().int().positive(),
    to_seq: z.number().int().positive().nullable().describe(
      "null: the end of the gap is unknown (the WAL is gone)",
    ),
    reason: z.string(),
  }).describe(
    "At start the audit WAL was missing or truncated: events in the seq range are lost.",
  ),
} as const;

export type EventKind = keyof typeof EVENT_PAYLOADS;

/**
 * Each payload schema's fast check (schema_fast.ts): every event a node
 * emits is checked against its schema, and zod's own walk was ~2% of a
 * node's CPU end to end with a best_effort sink (4 events per task). zod
 * still runs, and names the problem, for a payload the check does not accept.
 */
export const EVENT_PAYLOAD_CHECKS = Object.fromEntries(
  Object.entries(EVENT_PAYLOADS).map(([k, s]) => [k, fastCheck(s)]),
) as Record<EventKind, FastCheck | null>;

/** Every kind of SPEC §8, in its order. */
export const EVENT_KINDS = Object.keys(EVENT_PAYLOADS) as EventKind[];

/** The payload type of one kind. */
export type EventPayload<K extends EventKind> = z.infer<
  typeof EVENT_PAYLOADS[K]
>;

/** True if `kind` is one of SPEC §8's. */
export function isEventKind(kind: string): kind is EventKind {
  return Object.hasOwn(EVENT_PAYLOADS, kind);
}

/** The delivery tiers and their guarantees, in plain words (docs/events.md). */
export const TIER_GUARANTEES = {
  best_effort:
    "The default. Events wait in memory (at most 10,000 per plugin) and are sent in emission order, " +
    "several calls open at once and a batch of them at most every 250 ms (see audit); a failed call is retried once after a second, then the " +
    "event is dropped and counted in " +
    "`boi_hooks_dropped_total{plugin}`. Nothing is written to disk, no HWM is stored, work never waits. " +
    "Events emitted while the plugin is down, or while the node restarts, are lost; an event that got " +
    "through only on its retry may arrive after later ones.",
  audit:
    "Every event gets a per-(node, plugin) `seq` (1, 2, 3, … with no holes while its WAL is intact) and is appended to " +
    "`<data_dir>/hooks-wal/<plugin>.jsonl` and fsynced before it is sent (the events of one turn of the " +
    "node's event loop share one fsync). For an event caused by one of the node's own etcd transitions, " +
    "an intent is fsynced before the transaction is even sent: if the node dies after etcd committed but before the event was written, the restart " +
    "finds the intent, asks etcd whether that transaction committed, and emits the event then. A commit " +
    "with two events (a CLAIMED→DONE write: `task.started`, then `task.completed`, appended one after the " +
    "other) resolves its intent with the last of them, so a crash between the two appends leaves the " +
    "intent open, and the restart emits only the events of that commit not already in the WAL. Events are " +
    "sent in seq order, up to 64 calls open at once (as many as the plugin answers within half a " +
    "second; a batch of calls leaves at most every 100 ms), and retired only when the plugin acks their " +
    "seq and every seq before it; after a failed call nothing new is sent until the open calls are " +
    "answered, then delivery starts again at the oldest un-acked. The acked " +
    "high-water mark is written to `/boi/hooks-hwm/<plugin>/<node_id>` (by CAS, at most once a second " +
    "and at shutdown; it never decreases), and WAL segments are deleted once that stored HWM covers " +
    "them. After a plugin crash or a node restart delivery resumes after the HWM, so the plugin may see " +
    "an event twice: dedup on `dedup_key` (sha256 of node, seq, kind, ts). With 100 events un-acked " +
    "(`hooks_backpressure_window`: the hooks entry's `hooks_backpressure_window`, or `backpressure_window` for short, default 100, at least 10) the node stops claiming and committing task transitions (running " +
    "workers go on; their results wait and are committed in the order they finished) and emits " +
    "`hook.queue.saturated` once; it resumes when the un-acked count is back at 90 (90 % of the window). A WAL found missing " +
    "or truncated at start is reported as `hook.gap.detected` with the lost seq range; delivery then goes " +
    "on past the lost seqs (the plugin sees the seqs jump), so a damaged WAL never stalls the node. A torn " +
    "last line (a crash mid-append) is cut off when the WAL is opened, and an append that fails (a full " +
    "disk) is cut back and its seq given to the next event: nothing is sent that is not on disk. An audit " +
    'event whose append fails is logged as an error ("audit WAL append failed: event lost"); a ' +
    "transaction whose intent cannot be written does not leave.",
} as const;
