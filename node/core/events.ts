/** Events that drive the node: decoded etcd changes and local happenings. Time comes in `at`. */
import type { TxnEffect } from "./effects.ts";
import type { ProvisionEvent } from "./provision_types.ts";

/** One key change; `kv: null` is a delete. */
export interface KeyChange {
  key: string;
  revision: number;
  kv: {
    value: string;
    mod_revision: number;
    create_revision: number;
    lease: string;
    /** The validated record, memoized by the reducer on first use. */
    decoded?: { success: true; data: unknown } | {
      success: false;
      error: { issues: { path: PropertyKey[]; message: string }[] };
    };
  } | null;
}

/** The router's answer to a `route` effect; `error` set when the call failed (then no advice). */
export interface RouteAdviceEvent {
  type: "route_advice";
  at: number;
  task_id: string;
  sv: number;
  requires: Record<string, string> | null;
  preferred: string[];
  error: string | null;
}

export type NodeEvent =
  /** A provisioning step's outcome (provision_types.ts). */
  | ProvisionEvent
  /** Watch events of one or more revisions, in order. */
  | { type: "changes"; at: number; changes: KeyChange[] }
  /** A full re-list (start-up, compaction, long outage): replaces the etcd part of the view. */
  | { type: "relist"; at: number; revision: number; kvs: KeyChange[] }
  | { type: "tick"; at: number }
  /** `valid_until`: the lease lives at least until then (grant or keepalive send time + TTL). */
  | { type: "lease_granted"; at: number; lease_id: string; valid_until: number }
  | { type: "lease_renewed"; at: number; lease_id: string; valid_until: number }
  | { type: "lease_lost"; at: number }
  | {
    type: "txn_done";
    at: number;
    effect: TxnEffect;
    ok: boolean;
    /** Revision the transaction committed at; on a failed compare, the revision `reads` are at. */
    revision: number;
    error: string | null;
    /**
     * On a failed compare: the current records of the compared keys (kv null:
     * absent), read in the same request, so the next decision is made from
     * fresh state rather than re-sent against the same stale view.
     */
    reads?: KeyChange[];
  }
  /** A result etcd could not take now is parked in the pending-flush file, which owns it from here. */
  | { type: "result_flushed"; at: number; task_id: string; fence: number }
  /** A parked result was committed or found superseded. */
  | { type: "flush_resolved"; at: number; task_id: string }
  /**
   * The audit hooks queue reached the back-pressure window (stalled) or
   * drained back below it: claims and commits stop, then resume.
   */
  | {
    type: "hooks_backpressure";
    at: number;
    stalled: boolean;
    plugin: string;
    unacked: number;
    window: number;
  }
  /** The node's plugins became all ready, or one stopped being ready. */
  | { type: "plugins_health"; at: number; healthy: boolean }
  | RouteAdviceEvent
  /** The workspace of a claimed task is ready; whether to start it is decided now. */
  | {
    type: "worker_prepared";
    at: number;
    task_id: string;
    fence: number;
    workdir: string;
    env: Record<string, string>;
  }
  | {
    type: "worker_started";
    at: number;
    task_id: string;
    fence: number;
    pid: number;
  }
  /**
   * The Pool did not take a Kill (a failed or unanswered call): the worker
   * may run on, so whether to kill it is decided again.
   */
  | {
    type: "kill_failed";
    at: number;
    task_id: string;
    fence: number;
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
