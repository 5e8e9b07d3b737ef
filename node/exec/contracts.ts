/**
 * The Workspace and Pool contracts, shaped like their gRPC services (SPEC §7)
 * so the plugin issue can put a gRPC client behind them without touching core.
 */

export interface PrepareRequest {
  spec_id: string;
  task_id: string;
  spec_yaml: string;
  hints: Record<string, string>;
}
export interface PrepareResponse {
  workdir: string;
  env: Record<string, string>;
}
export interface CleanupRequest {
  spec_id: string;
  task_id: string;
  workdir: string;
}

/** Gives each attempt a working directory and takes it back afterwards. */
export interface Workspace {
  prepare(req: PrepareRequest): Promise<PrepareResponse>;
  cleanup(req: CleanupRequest): Promise<void>;
}

export interface SpawnRequest {
  task_id: string;
  /** The fence: Spawn is idempotent per (task_id, claim_token). */
  claim_token: string;
  workdir: string;
  argv: string[] | null;
  shell: string | null;
  prompt: string | null;
  env: Record<string, string>;
  timeout_ms: number | null;
}

export type WorkerEvent =
  | { started: { pid: number } }
  | { stdout: Uint8Array }
  | { stderr: Uint8Array }
  | {
    exit: { code: number | null; signal: string | null; error: string | null };
  };

export interface KillRequest {
  task_id: string;
  claim_token: string;
  grace_ms: number;
}

/** Runs workers. The stream ends with exactly one `exit` event. */
export interface Pool {
  spawn(req: SpawnRequest): AsyncIterable<WorkerEvent>;
  kill(req: KillRequest): Promise<void>;
}
