/**
 * Wire records stored in etcd (SPEC §2–§3). One zod schema per record; the
 * TypeScript types are inferred from them so the format has one definition.
 */
import { z } from "zod";

/** Task states of SPEC §3. */
export const TASK_STATES = [
  "BLOCKED",
  "PENDING",
  "CLAIMED",
  "RUNNING",
  "DONE",
  "FAILED",
  "CANCELLED",
] as const;
export const TaskState = z.enum(TASK_STATES);
export type TaskState = z.infer<typeof TaskState>;

/** States after which nothing ever changes the envelope again. */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set([
  "DONE",
  "FAILED",
  "CANCELLED",
]);

/** `^[a-z0-9][a-z0-9_-]{0,62}$`: spec names and task ids (SPEC §3). */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** A full task id: `<spec_id>.<id>`. */
export const TASK_ID_PATTERN =
  /^[a-z0-9][a-z0-9_-]{0,62}\.[a-z0-9][a-z0-9_-]{0,62}$/;

export const Requires = z.record(z.string(), z.string());
export type Requires = z.infer<typeof Requires>;

/** The task envelope at `/boi/dispatch-queue/{task_id}`. */
export const Envelope = z.object({
  task_id: z.string().regex(TASK_ID_PATTERN),
  spec_id: z.string().regex(ID_PATTERN),
  state: TaskState,
  state_version: z.number().int().nonnegative(),
  requires: Requires,
  /** Shell command (`sh -c`) or argv list; null when only `prompt` is set. */
  run: z.union([z.string(), z.array(z.string()).min(1)]).nullable(),
  prompt: z.string().nullable(),
  /** The task's own `env`; the spec-level one is in the spec record. */
  env: z.record(z.string(), z.string()),
  timeout_ms: z.number().int().positive().nullable(),
  /** Full task ids. */
  depends_on: z.array(z.string()),
  attempts: z.number().int().nonnegative(),
  max_attempts: z.number().int().positive(),
  retries_left: z.number().int().nonnegative(),
  claimant_node_id: z.string().nullable(),
  /** Lease ids are int64: kept as decimal strings. */
  claim_lease_id: z.string().nullable(),
  fence: z.number().int().nullable(),
  last_error: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  dispatched_at: z.number().int(),
  started_at: z.number().int().nullable(),
  finished_at: z.number().int().nullable(),
  ran_on: z.string().nullable(),
  cancel_requested: z.boolean(),
  /** Retry backoff: no claim before this time (ms since epoch). */
  not_before: z.number().int().nullable(),
});
export type Envelope = z.infer<typeof Envelope>;

/** `/boi/claims/{task_id}`, bound to the claimant's node lease. */
export const Claim = z.object({
  node_id: z.string(),
  lease_id: z.string(),
  claimed_at: z.number().int(),
  attempt: z.number().int().positive(),
});
export type Claim = z.infer<typeof Claim>;

/** `/boi/nodes/{node_id}`. */
export const NodeRecord = z.object({
  node_id: z.string(),
  addr: z.string(),
  version: z.string(),
  started_at: z.number().int(),
  pid: z.number().int(),
});
export type NodeRecord = z.infer<typeof NodeRecord>;

export const Health = z.enum(["ok", "degraded"]);
export type Health = z.infer<typeof Health>;

/** `/boi/caps/{node_id}`. */
export const CapsRecord = z.object({
  static: z.record(z.string(), z.string()),
  dynamic: z.object({
    workers_busy: z.number().int().nonnegative(),
    workers_max: z.number().int().nonnegative(),
    health: Health,
  }).loose(),
});
export type CapsRecord = z.infer<typeof CapsRecord>;

/** `/boi/specs/{spec_id}`. Written last at dispatch: it commits the spec. */
export const SpecRecord = z.object({
  spec_id: z.string().regex(ID_PATTERN),
  yaml: z.string(),
  sha256: z.string(),
  dispatched_by: z.string(),
  dispatched_at: z.number().int(),
  task_ids: z.array(z.string()),
  /**
   * The spec-level `env`, stored once here instead of in every envelope;
   * the node merges it under each task's own `env` when it spawns
   * (node/spawn_env.ts). Absent in records written before it existed.
   */
  env: z.record(z.string(), z.string()).optional(),
});
export type SpecRecord = z.infer<typeof SpecRecord>;

/** `/boi/cluster/dispatch_paused`. */
export const DispatchPaused = z.object({
  paused_at: z.number().int(),
  by: z.string(),
});
export type DispatchPaused = z.infer<typeof DispatchPaused>;

/**
 * `/boi/cluster/dispatching/{spec_id}`: a dispatch of several transactions is
 * under way, bound to a lease of the dispatcher's (never kept alive, so it
 * ends the dispatch's time). Nodes leave envelopes without a spec record
 * alone while it is there; the record's transaction requires it and deletes
 * it (cli/dispatch_write.ts, node/core/retire_orphans.ts).
 */
export const DispatchInProgress = z.object({
  spec_id: z.string(),
  dispatched_by: z.string(),
  transactions: z.number().int(),
});
export type DispatchInProgress = z.infer<typeof DispatchInProgress>;

/** `/boi/cluster/drain/{node_id}`: present while an operator drains the node. */
export const DrainRequest = z.object({
  requested_at: z.number().int(),
  by: z.string(),
});
export type DrainRequest = z.infer<typeof DrainRequest>;

/** A line of `<data_dir>/pending-flush/<node_id>.jsonl`: a result etcd could not take yet. */
export const FlushEntry = z.object({
  task_id: z.string(),
  fence: z.number().int(),
  attempt: z.number().int(),
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
  error: z.string().nullable(),
  lost: z.boolean().default(false),
  started_at: z.number().int().nullable(),
  finished_at: z.number().int(),
  parked_at: z.number().int(),
});
export type FlushEntry = z.infer<typeof FlushEntry>;

/**
 * `/boi/provision-req/{req_id}` (SPEC §2, §10), under its own 300 s lease:
 * one open request per distinct `requires` (the hint). Written only by the
 * admin node that asked its provisioner (`requested_by`).
 */
export const ProvisionRequest = z.object({
  req_id: z.string(),
  hint: Requires,
  /** `hintHash(hint)`: names the failure record of the same requires. */
  hint_hash: z.string(),
  requested_at: z.number().int(),
  requested_by: z.string(),
  allocation_id: z.string().optional(),
  deadline_at: z.number().int(),
  fulfilled_by: z.string().optional(),
  fulfilled_at: z.number().int().optional(),
  /** The join token minted for it (by hash): revoked when the request fails. */
  token_id_sha256: z.string().optional(),
});
export type ProvisionRequest = z.infer<typeof ProvisionRequest>;

/**
 * `/boi/provision-failures/{hint_hash}` (SPEC §2): consecutive failures of
 * one requires and the cooldown they caused. Every request for the hint is
 * opened by a compare on this record, so two admin nodes cannot both open
 * one, and a stale view cannot slip past a cooldown.
 */
export const ProvisionFailures = z.object({
  count: z.number().int().nonnegative(),
  cooldown_until: z.number().int(),
  hint: Requires.optional(),
  /** Requests opened for this hint so far: the next req_id's sequence number. */
  attempts: z.number().int().nonnegative().optional(),
  last_reason: z.string().optional(),
  /**
   * The request whose close (fulfilled or failed) wrote this record: a close
   * retried after etcd gave no answer is recognised as done, not counted again.
   */
  last_closed: z.string().optional(),
});
export type ProvisionFailures = z.infer<typeof ProvisionFailures>;

/**
 * Largest value a node accepts per collection (UTF-16 length of the JSON):
 * anything larger is logged and skipped like an invalid record, so a stray
 * 1.4 MB "node record" cannot join or bloat every view.
 */
export const RECORD_MAX_BYTES: Readonly<Record<string, number>> = {
  nodes: 4 * 1024,
  caps: 16 * 1024,
  claims: 1024,
  // The largest a dispatch can write (one record per transaction of at most
  // MAX_TXN_BYTES, cli/dispatch_write.ts): a node must accept whatever dispatch stores.
  "dispatch-queue": 1_000_000,
  specs: 1_000_000,
  // A hint is a task's requires: as large as the envelope allows it, within reason.
  "provision-req": 64 * 1024,
  "provision-failures": 64 * 1024,
};

/**
 * Room a dispatch leaves in each envelope for what nodes add as the task runs
 * (ids, revisions, times, a `last_error` of at most MAX_ERROR_CHARS): an
 * envelope that outgrew RECORD_MAX_BYTES would drop out of every view, and its
 * spec could be retired under it.
 */
export const ENVELOPE_HEADROOM_BYTES = 16 * 1024;

/** Longest `last_error` a node writes (longer ones are cut, saying how much was). */
export const MAX_ERROR_CHARS = 2048;

/** `/boi/hooks-hwm/{plugin}/{node_id}`: the acked high-water mark of one (node, plugin), SPEC §8. */
export const HwmRecord = z.object({
  seq: z.number().int().nonnegative(),
  acked_at: z.number().int(),
});
export type HwmRecord = z.infer<typeof HwmRecord>;
