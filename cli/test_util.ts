/** Fixtures shared by the CLI unit tests. */
import type { Envelope } from "../node/schema.ts";

/** A PENDING envelope with overrides, for tests. */
export function envelope(over: Partial<Envelope> = {}): Envelope {
  return {
    task_id: "s-aaaaaa.t",
    spec_id: "s-aaaaaa",
    state: "PENDING",
    state_version: 0,
    requires: {},
    run: "true",
    prompt: null,
    env: {},
    timeout_ms: null,
    depends_on: [],
    attempts: 0,
    max_attempts: 3,
    retries_left: 0,
    claimant_node_id: null,
    claim_lease_id: null,
    fence: null,
    last_error: null,
    exit_code: null,
    dispatched_at: 0,
    started_at: null,
    finished_at: null,
    ran_on: null,
    cancel_requested: false,
    not_before: null,
    ...over,
  };
}
