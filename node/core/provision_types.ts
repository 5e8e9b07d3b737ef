/**
 * Provisioning (SPEC §5.6, §10) as the core sees it: its settings, what the
 * view keeps about requests, the effects the shell runs and the events it
 * reports back. The decisions are in provision.ts.
 */
import type {
  ProvisionFailures,
  ProvisionRequest,
  Requires,
} from "../schema.ts";
import type { Compare, EmitEffect, Op } from "./effects.ts";
import type { Versioned } from "./view.ts";

/** Settings of a node that runs a provisioner plugin (config, SPEC §13). */
export interface ProvisionConfig {
  /** How long a new node has to join before the request fails. @default 60000 */
  readonly deadline_ms: number;
  /** No Allocate for a requires this long after `failure_limit` failures. @default 300000 */
  readonly cooldown_ms: number;
  /** Consecutive failures that start the cooldown. @default 3 */
  readonly failure_limit: number;
  /** Lease of a request record: how long a dead admin's request stays. @default 300 */
  readonly req_ttl_s: number;
}

/** Where this node is with one of its own requests. */
export type LocalPhase =
  | "opening" // mint + open txn in flight
  | "allocating" // Allocate in flight
  | "allocated" // waiting for the node to join (or the deadline)
  | "writing" // a fulfil/close write in flight
  | "done"; // closed: nothing left to do here

/** One request this node opened (or is opening): the shell's part of it. */
export interface LocalProvision {
  readonly req_id: string;
  readonly hint: Requires;
  readonly hint_hash: string;
  readonly requested_at: number;
  readonly deadline_at: number;
  readonly phase: LocalPhase;
  readonly allocation_id: string | null;
  /** Allocate failed (plugin crash, refusal): closed as a failure at once. */
  readonly allocate_error: string | null;
  /** The join token minted for it, by hash: deleted (revoked) when it fails. */
  readonly token_id_sha256: string | null;
  /**
   * The revision the token was minted at (null: adopted from a previous run):
   * a failure close compares it, so a join that consumed the token first
   * makes the close fail instead of taking back the node that just joined.
   */
  readonly token_revision: number | null;
  /** The watch showed the token deleted, not by us: a node joined with it (or it expired). */
  readonly token_used: boolean;
  /** The first claim seen by a node whose caps match the hint. */
  readonly first_claim: { node_id: string; at: number } | null;
  /**
   * A write etcd did not answer (it may have committed): its events are
   * announced if the failure record shows it did.
   */
  readonly unconfirmed: ProvisionWriteEffect | null;
}

/** The provisioning part of the view. */
export interface ProvisionView {
  readonly reqs: ReadonlyMap<string, Versioned<ProvisionRequest>>;
  readonly failures: ReadonlyMap<string, Versioned<ProvisionFailures>>;
  /** Failure records present but invalid: fail closed, never provision those. */
  readonly unreadable: ReadonlySet<string>;
  /** This node's own requests, by req_id. */
  readonly local: ReadonlyMap<string, LocalProvision>;
  /** Hint hashes this node may not try to open until then (a refused open). */
  readonly backoff: ReadonlyMap<string, number>;
}

export interface MutableProvisionView extends ProvisionView {
  reqs: Map<string, Versioned<ProvisionRequest>>;
  failures: Map<string, Versioned<ProvisionFailures>>;
  unreadable: Set<string>;
  local: Map<string, LocalProvision>;
  backoff: Map<string, number>;
}

export function emptyProvisionView(): MutableProvisionView {
  return {
    reqs: new Map(),
    failures: new Map(),
    unreadable: new Set(),
    local: new Map(),
    backoff: new Map(),
  };
}

/**
 * Open a request: mint a join token for the hint, then one transaction
 * (`compare`: the request key absent and the failure record as the decision
 * saw it) putting `record` under a new lease of `ttl_s` and `failures`; then
 * Allocate. Each step's outcome comes back as a `provision` event.
 */
export interface ProvisionOpenEffect {
  kind: "provision";
  action: "open";
  req_id: string;
  hint: Requires;
  hint_hash: string;
  record: ProvisionRequest;
  failures: ProvisionFailures;
  compare: Compare[];
  ttl_s: number;
  /** Lifetime of the join token. */
  token_ttl_s: number;
  deadline_ms: number;
}

/**
 * Fulfil or close a request: one guarded transaction, then, once it
 * committed, Deallocate when `deallocate` names an allocation (the token is
 * revoked by then; a close whose compare failed is re-decided and takes
 * nothing back: a node may have joined). `emits` are announced once it
 * committed (a failed compare is re-decided, never announced twice).
 */
export interface ProvisionWriteEffect {
  kind: "provision";
  action: "write";
  req_id: string;
  /** The local request is finished once this commits. */
  closes: boolean;
  deallocate: string | null;
  compare: Compare[];
  success: Op[];
  emits: EmitEffect[];
  /** A dead admin's request closed by this node (no local state): its hint's hash. */
  takeover_hash?: string;
}

export type ProvisionEffect = ProvisionOpenEffect | ProvisionWriteEffect;

/** What the shell reports about a provisioning effect. */
export type ProvisionEvent =
  & {
    type: "provision";
    at: number;
    req_id: string;
  }
  & (
    /** The request is in etcd (at `revision`); Allocate is being called. */
    | {
      step: "opened";
      revision: number;
      token_id_sha256: string;
      /** The mod revision the mint wrote the token's record at. */
      token_revision: number;
    }
    /** Nothing was written (mint refused, compare failed, no join listener). */
    | { step: "open_refused"; error: string; retry_after_ms: number }
    | { step: "allocated"; allocation_id: string }
    | { step: "allocate_failed"; error: string }
    | {
      step: "written";
      ok: boolean;
      effect: ProvisionWriteEffect;
      error: string | null;
    }
  );
