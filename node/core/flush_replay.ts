/**
 * What to do with a parked result (SPEC §6 pending flush) once etcd answers:
 * commit it under its fence, or recognise it as already committed (the reply
 * of the commit was lost) or superseded (someone else owns the task now).
 * Pure: the shell reads the claim and the envelope and executes the answer.
 */
import { Envelope, type FlushEntry } from "../schema.ts";
import type { Keys } from "../keys.ts";
import type { Compare, Op } from "./effects.ts";
import type { KeyChange } from "./events.ts";
import { LEASE_EXPIRED } from "./decide.ts";
import { finishEnvelope } from "./finish.ts";
import type { CoreConfig } from "./view.ts";

export type ReplayStep =
  | {
    kind: "commit";
    compare: Compare[];
    success: Op[];
    next: Envelope;
    /** The envelope's state it replaces (a finish from CLAIMED also emits task.started). */
    from: Envelope["state"];
  }
  | { kind: "already" }
  | {
    kind: "superseded";
    current_claim_fence: number | null;
    state: string | null;
  };

/** Decides one parked result from the current claim and envelope records (null: absent). */
export function decideReplay(
  config: CoreConfig,
  keys: Keys,
  entry: FlushEntry,
  claim: KeyChange | null,
  task: KeyChange | null,
): ReplayStep {
  const env = task?.kv ? parseEnvelope(task.kv.value) : null;
  const claimFence = claim?.kv ? claim.kv.create_revision : null;
  if (!env || !task?.kv || claimFence !== entry.fence) {
    // The finish committed and only its answer was lost: the envelope carries
    // our fence. Not when the monitor put it back after our lease expired:
    // that keeps the fence (set by RUNNING) and `ran_on` (of an earlier
    // attempt here), and our result was thrown away.
    if (
      env && claimFence === null && env.fence === entry.fence &&
      env.ran_on === config.node_id &&
      !env.last_error?.startsWith(LEASE_EXPIRED) &&
      !(env.state === "CANCELLED" && env.finished_at !== entry.finished_at)
    ) return { kind: "already" };
    return {
      kind: "superseded",
      current_claim_fence: claimFence,
      state: env?.state ?? null,
    };
  }
  const next = finishEnvelope(
    config,
    env,
    entry.fence,
    {
      code: entry.code,
      signal: entry.signal,
      error: entry.error,
      lost: entry.lost,
      finished_at: entry.finished_at,
    },
    entry.started_at,
  );
  const claimKey = keys.claim(entry.task_id);
  const taskKey = keys.task(entry.task_id);
  return {
    kind: "commit",
    next,
    from: env.state,
    compare: [
      { key: claimKey, target: "create", equals: entry.fence },
      { key: taskKey, target: "mod", equals: task.kv.mod_revision },
    ],
    success: [
      { op: "put", key: taskKey, value: JSON.stringify(next) },
      { op: "delete", key: claimKey },
    ],
  };
}

function parseEnvelope(text: string): Envelope | null {
  try {
    const r = Envelope.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
