/**
 * The Workspace and Pool contracts, shaped like their gRPC services (SPEC §7).
 * The messages are the ones generated from the `.proto` files (proto/gen);
 * only Spawn's request and its events have a handier shape here than a
 * oneof gives (argv/shell and the event as plain optional keys, absent
 * fields as null), mapped to and from the generated messages by
 * grpc_codec.ts.
 * @module
 */
import type * as pool from "../../proto/gen/boi/pool/v1/pool.ts";
import type * as ws from "../../proto/gen/boi/workspace/v1/workspace.ts";

/**
 * What a workspace's `prepare` sees: the message without the two
 * `spec_cache` fields, which the SDK settles before the handler runs
 * (spec_cache_wire.ts).
 */
export type PrepareRequest = Omit<
  ws.PrepareRequest,
  "spec_digest" | "spec_yaml_cached"
>;
export type PrepareResponse = ws.PrepareResponse;
export type CleanupRequest = ws.CleanupRequest;

/** Gives each attempt a working directory and takes it back afterwards. */
export interface Workspace {
  prepare(req: PrepareRequest): Promise<PrepareResponse>;
  cleanup(req: CleanupRequest): Promise<void>;
}

/** `pool.v1.SpawnRequest` with its `command` oneof as two nullable fields. */
export type SpawnRequest =
  & Omit<pool.SpawnRequest, "command" | "prompt" | "timeout_ms">
  & {
    /** Set: run this argv (the oneof's `argv`); null: see `shell`. */
    argv: string[] | null;
    /** Set (and `argv` null): run this shell line; both null: a prompt-only task. */
    shell: string | null;
    prompt: string | null;
    /** Null: no timeout. */
    timeout_ms: number | null;
  };

/** `pool.v1.Exit` with its absent fields as null. */
export type WorkerExit = {
  [K in keyof pool.Exit]-?: Exclude<pool.Exit[K], undefined> | null;
};

/** One `pool.v1.WorkerEvent`: the member of its `event` oneof that is set. */
export type WorkerEvent =
  | { started: pool.Started }
  | { stdout: Uint8Array }
  | { stderr: Uint8Array }
  | { exit: WorkerExit };

export type KillRequest = pool.KillRequest;

/** Runs workers. The stream ends with exactly one `exit` event. */
export interface Pool {
  spawn(req: SpawnRequest): AsyncIterable<WorkerEvent>;
  kill(req: KillRequest): Promise<void>;
}
