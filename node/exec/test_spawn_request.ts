/** Test fixture: a Spawn request with every field, overridable. */
import type { SpawnRequest } from "./contracts.ts";

let n = 0;

/** A Spawn request for `true`-like tests: a fresh task id each call unless given. */
export function spawnRequest(over: Partial<SpawnRequest> = {}): SpawnRequest {
  return {
    task_id: `s.t${++n}`,
    claim_token: "1",
    workdir: "/tmp",
    argv: null,
    shell: null,
    prompt: null,
    env: {},
    timeout_ms: null,
    ...over,
  };
}
