/** The envelope a worker's attempt leaves behind (SPEC §4 RUNNING→DONE/FAILED/PENDING). */
import { type Envelope, MAX_ERROR_CHARS } from "../schema.ts";
import type { CoreConfig, WorkerResult } from "./view.ts";

/** Longest retry delay. */
const MAX_BACKOFF_MS = 60_000;

/**
 * The envelope a finished worker leaves behind: terminal, or PENDING for a
 * retry. Timed by the worker's own end (`r.finished_at`), not by when the
 * write is decided: a result replayed from the pending flush an hour later
 * still says when it finished, and a finish decided again after a lost
 * answer writes the same bytes (so `txnCommitted` can recognise it).
 */
export function finishEnvelope(
  config: CoreConfig,
  env: Envelope,
  fence: number,
  r: WorkerResult,
  workerStartedAt: number | null,
): Envelope {
  const at = r.finished_at;
  if (r.error !== null && r.error.length > MAX_ERROR_CHARS) {
    r = { ...r, error: cutError(r.error) };
  }
  const base: Envelope = {
    ...env,
    state_version: env.state_version + 1,
    exit_code: r.code,
    ran_on: config.node_id,
    fence,
    started_at: env.started_at ?? workerStartedAt,
    claimant_node_id: null,
    claim_lease_id: null,
  };
  if (env.cancel_requested) {
    return {
      ...base,
      state: "CANCELLED",
      last_error: "cancelled by user",
      finished_at: at,
    };
  }
  if (r.code === 0 && r.error === null) {
    return { ...base, state: "DONE", last_error: null, finished_at: at };
  }
  if (r.lost) {
    if (env.attempts < env.max_attempts) {
      return {
        ...base,
        state: "PENDING",
        not_before: at + config.retry_backoff_ms,
        last_error: `attempt lost: ${r.error}`,
      };
    }
    return {
      ...base,
      state: "FAILED",
      last_error: `attempt lost: ${r.error}`,
      finished_at: at,
    };
  }
  const why = r.error ??
    (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`);
  if (env.retries_left > 0 && env.attempts < env.max_attempts) {
    const used = env.attempts - 1;
    const backoff = Math.min(
      MAX_BACKOFF_MS,
      config.retry_backoff_ms * 2 ** Math.max(0, used),
    );
    return {
      ...base,
      state: "PENDING",
      retries_left: env.retries_left - 1,
      not_before: at + backoff,
      last_error: why,
    };
  }
  return { ...base, state: "FAILED", last_error: why, finished_at: at };
}

/**
 * An error kept within MAX_ERROR_CHARS: a pool's message can quote a whole
 * argv (E2BIG), and the envelope must stay under RECORD_MAX_BYTES.
 */
export function cutError(error: string): string {
  if (error.length <= MAX_ERROR_CHARS) return error;
  const more = ` … (${error.length} chars, cut)`;
  return error.slice(0, MAX_ERROR_CHARS - more.length) + more;
}
