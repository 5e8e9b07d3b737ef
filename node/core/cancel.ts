/**
 * The cancel policy of `tasks cancel` (SPEC §4 any→CANCELLED), pure so the
 * simulator's user cancels exactly as the CLI does.
 */
import { type Envelope, TERMINAL_STATES } from "../schema.ts";

/** What `tasks cancel` does next with an envelope. */
export type CancelStep =
  | { kind: "done" }
  | { kind: "put"; envelope: Envelope }
  | { kind: "wait" };

/**
 * Pure cancel policy: waiting tasks are cancelled at once; claimed or running
 * ones get `cancel_requested` and their claimant kills the worker and writes
 * CANCELLED itself.
 */
export function cancelStep(e: Envelope, now: number): CancelStep {
  if (TERMINAL_STATES.has(e.state)) return { kind: "done" };
  if (e.state === "BLOCKED" || e.state === "PENDING") {
    return {
      kind: "put",
      envelope: {
        ...e,
        state: "CANCELLED",
        state_version: e.state_version + 1,
        finished_at: now,
        last_error: "cancelled by user",
      },
    };
  }
  if (!e.cancel_requested) {
    return {
      kind: "put",
      envelope: {
        ...e,
        cancel_requested: true,
        state_version: e.state_version + 1,
      },
    };
  }
  return { kind: "wait" };
}
