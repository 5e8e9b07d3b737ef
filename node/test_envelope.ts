/** A task envelope for unit tests: PENDING, nothing run yet, with overrides. */
import type { Envelope } from "./schema.ts";

/** `taskId` names the task (`<spec_id>.<id>`); the spec id is taken from it. */
export function testEnvelope(
  taskId: string,
  over: Partial<Envelope> = {},
): Envelope {
  return {
    task_id: taskId,
    spec_id: taskId.split(".")[0],
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
