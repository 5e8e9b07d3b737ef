/**
 * The plugin record at `/boi/plugins/{node_id}/{name}` (SPEC §2): one zod
 * schema for the node that writes it, the node that reads its crash list back
 * at start, and the CLI that lists it.
 * @module
 */
import { z } from "zod";
import type { PluginStatus } from "./supervisor_types.ts";

/** At most this many crash times are kept in a record (the budget needs 4). */
const MAX_CRASHES = 64;

export const PluginRecord = z.object({
  kind: z.string(),
  state: z.enum(["starting", "ready", "unhealthy", "unstable"]),
  crashes: z.array(z.number()).max(MAX_CRASHES),
  proto_minor: z.number().nullable(),
  capabilities: z.array(z.string()),
  reason: z.string().nullable(),
});
export type PluginRecord = z.infer<typeof PluginRecord>;

/** Maps the supervisor's fine-grained states onto the four of SPEC §2. */
export function recordState(s: PluginStatus["state"]): PluginRecord["state"] {
  switch (s) {
    case "ready":
      return "ready";
    case "starting":
    case "crashed":
    case "start_failed":
    case "stopping":
    case "stopped":
      return "starting";
    case "unhealthy":
      return "unhealthy";
    case "unstable":
    case "refused":
      return "unstable";
  }
}

/** The record a status is published as. */
export function toRecord(st: PluginStatus): PluginRecord {
  return {
    kind: st.kind,
    state: recordState(st.state),
    crashes: st.crashes.slice(-MAX_CRASHES),
    proto_minor: st.proto_minor,
    capabilities: st.capabilities,
    reason: st.reason,
  };
}

/**
 * The crash list of a stored record, or null when the text is not a plugin
 * record (a stray value must not stop a node from starting).
 */
export function storedCrashes(text: string): number[] | null {
  try {
    const r = PluginRecord.safeParse(JSON.parse(text));
    return r.success ? r.data.crashes : null;
  } catch {
    return null;
  }
}
