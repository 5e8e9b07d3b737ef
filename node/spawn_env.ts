/**
 * The environment of a task's process. The spec-level `env` is stored once
 * in the spec record (not copied into every envelope: issue 11, storage
 * amplification) and merged here, at spawn time.
 */
import type { Envelope, SpecRecord } from "./schema.ts";

/**
 * Workspace variables, then the spec's `env`, then the task's own `env`
 * (each wins over the one before, as in the spec file), then boi's
 * `BOI_*` variables, which nothing overrides. Throws when the spec record
 * is unknown: running without its env would run the wrong thing.
 */
export function spawnEnv(
  workspace: Readonly<Record<string, string>>,
  spec: Pick<SpecRecord, "spec_id" | "env"> | undefined,
  envelope: Pick<Envelope, "spec_id" | "env">,
  boi: Readonly<Record<string, string>>,
): Record<string, string> {
  if (spec === undefined || spec.spec_id !== envelope.spec_id) {
    throw new Error(`spec record ${envelope.spec_id} is not known here`);
  }
  return { ...workspace, ...spec.env ?? {}, ...envelope.env, ...boi };
}
