/** Effects: plain data the shell executes. Every etcd write carries its compare. */
import type { Envelope } from "../schema.ts";
import type { ProvisionEffect } from "./provision_types.ts";

/** One compare of an etcd transaction. */
export type Compare = {
  key: string;
  target: "mod" | "create" | "version";
  equals: number;
  /**
   * Compares every key in `[key, range_end)` instead (etcd: an empty range
   * holds as one absent key, so `version` 0 reads "none under the prefix").
   */
  range_end?: string;
};

/** One operation of an etcd transaction; values are compact JSON. */
export type Op =
  | { op: "put"; key: string; value: string; lease?: string }
  | { op: "delete"; key: string };

/** Why a transaction is written: logs, metrics and follow-up decisions key on it. */
export type TxnReason =
  | "claim"
  | "running"
  | "finish"
  | "requeue"
  | "unblock"
  | "cancel_dependent"
  | "unschedulable"
  /** A BLOCKED task's `last_error` says what it waits for in vain (a missing dependency). */
  | "note"
  | "stray_claim"
  /** A finished spec's envelope, or (task_id = the spec id) its record, deleted after its retention (retire.ts). */
  | "retire";

export interface TxnEffect {
  kind: "txn";
  reason: TxnReason;
  task_id: string;
  compare: Compare[];
  success: Op[];
  /** For a claim: the attempt number it starts. */
  attempt?: number;
  /** For a claimant's write: the state it replaces (a finish from CLAIMED folds RUNNING in). */
  from_state?: Envelope["state"];
  /** Logged once it commits, not when it is sent (a refused compare is decided again). */
  on_commit?: LogEffect;
}

/** Our claim committed: prepare its workspace. The command starts only after a second decision. */
export interface PrepareEffect {
  kind: "prepare";
  task_id: string;
  fence: number;
  /** The node lease the claim lives under. */
  lease: string;
  attempt: number;
  envelope: Envelope;
}

/**
 * The workspace is ready and the claim is still ours, uncancelled: start the
 * command (Pool Spawn). Decided from the view at that moment, never earlier.
 */
export interface SpawnEffect {
  kind: "spawn";
  task_id: string;
  fence: number;
  attempt: number;
  envelope: Envelope;
  workdir: string;
  /** Environment the workspace asked for. */
  env: Record<string, string>;
}

/** The workspace is ready but the task may not run any more: never start it, clean up. */
export interface AbortEffect {
  kind: "abort";
  task_id: string;
  fence: number;
  workdir: string;
  reason: string;
}

export interface KillEffect {
  kind: "kill";
  task_id: string;
  fence: number;
  grace_ms: number;
  reason: string;
}

/** The worker's result can never be written; forget it. */
export interface DropWorkerEffect {
  kind: "drop_worker";
  task_id: string;
  fence: number;
  /** The claim expired under a live worker's result: counts toward the cooldown. */
  expired: boolean;
}

export interface LogEffect {
  kind: "log";
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  fields: Record<string, unknown>;
}

/** A cluster event (SPEC §8); hooks arrive with the plugins issue, today they are logged. */
export interface EmitEffect {
  kind: "emit";
  event: string;
  payload: Record<string, unknown>;
}

/** Ask this node's router about a PENDING attempt (SPEC §5.2); the answer comes back as `route_advice`. */
export interface RouteEffect {
  kind: "route";
  task_id: string;
  /** The PENDING envelope's `state_version`: the attempt the advice is for. */
  sv: number;
  requires: Record<string, string>;
  candidates: { node_id: string; caps: Record<string, string> }[];
}

export type Effect =
  | TxnEffect
  | PrepareEffect
  | SpawnEffect
  | AbortEffect
  | KillEffect
  | DropWorkerEffect
  | LogEffect
  | EmitEffect
  | ProvisionEffect
  | RouteEffect;
