/** Events that drive the node: decoded etcd changes and local happenings. Time comes in `at`. */
import type { TxnEffect } from "./effects.ts";

/** One key change; `kv: null` is a delete. */
export interface KeyChange {
  key: string;
  revision: number;
  kv: {
    value: string;
    mod_revision: number;
    create_revision: number;
    lease: string;
  } | null;
}

export type NodeEvent =
  /** Watch events of one or more revisions, in order. */
  | { type: "changes"; at: number; changes: KeyChange[] }
  /** A full re-list (start-up, compaction, long outage): replaces the etcd part of the view. */
  | { type: "relist"; at: number; revision: number; kvs: KeyChange[] }
  | { type: "tick"; at: number }
  | { type: "lease_granted"; at: number; lease_id: string }
  | { type: "lease_lost"; at: number }
  | {
    type: "txn_done";
    at: number;
    effect: TxnEffect;
    ok: boolean;
    /** Revision the transaction committed at (ok only). */
    revision: number;
    error: string | null;
  }
  /** A result etcd could not take now is parked in the pending-flush file, which owns it from here. */
  | { type: "result_flushed"; at: number; task_id: string; fence: number }
  /** A parked result was committed or found superseded. */
  | { type: "flush_resolved"; at: number; task_id: string }
  /** The node's plugins became all ready, or one stopped being ready. */
  | { type: "plugins_health"; at: number; healthy: boolean }
  | {
    type: "worker_started";
    at: number;
    task_id: string;
    fence: number;
    pid: number;
  }
  | {
    type: "worker_exit";
    at: number;
    task_id: string;
    fence: number;
    code: number | null;
    signal: string | null;
    error: string | null;
    lost: boolean;
  };
