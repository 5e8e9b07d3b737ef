/**
 * The five plugin contracts as TypeScript interfaces, shaped like their gRPC
 * services (SPEC §7). Workspace and Pool come from node/exec/contracts.ts;
 * core, the gRPC clients and the plugin SDK all derive their types from here.
 * @module
 */
import type { Pool, Workspace } from "../exec/contracts.ts";

export type {
  CleanupRequest,
  KillRequest,
  Pool,
  PrepareRequest,
  PrepareResponse,
  SpawnRequest,
  WorkerEvent,
  Workspace,
} from "../exec/contracts.ts";
export type { PluginKind } from "../../proto/mod.ts";

/** Core → plugin, the first call after `BOI_READY`. */
export interface HandshakeRequest {
  core_version: string;
  proto_major: number;
  proto_minor: number;
  /** What core can use (proto minor ≥ 1), e.g. `mux`; empty from a 1.0 core. */
  capabilities: string[];
}

/** The plugin's own name, version and protocol; core judges the major and minor. */
export interface HandshakeResponse {
  plugin_name: string;
  plugin_version: string;
  proto_major: number;
  proto_minor: number;
  capabilities: string[];
}

/** Answer to the periodic health probe. */
export interface HealthResponse {
  ok: boolean;
  detail: string;
}

/** A node that could run the task, with its capabilities. */
export interface RouteCandidate {
  node_id: string;
  caps: Record<string, string>;
}
export interface RouteRequest {
  task_id: string;
  requires: Record<string, string>;
  candidates: RouteCandidate[];
}
export interface RouteResponse {
  requires: Record<string, string>;
  /** Most preferred first; empty: no preference. */
  preferred_node_ids: string[];
}

/** May rewrite a task's requires and rank its candidate nodes. */
export interface Router {
  route(req: RouteRequest): Promise<RouteResponse>;
}

export interface AllocateRequest {
  request_id: string;
  hint: Record<string, string>;
  join_token: string;
  bootstrap_url: string;
  deadline_ms: number;
}
export interface AllocateResponse {
  allocation_id: string;
}
export interface DeallocateRequest {
  allocation_id: string;
}

/** Brings up a node that joins with the token; takes it back on Deallocate. */
export interface Provisioner {
  allocate(req: AllocateRequest): Promise<AllocateResponse>;
  deallocate(req: DeallocateRequest): Promise<void>;
}

/** Delivery tier of a hook event (SPEC §8). */
export type HookTier = "best_effort" | "audit";

export interface HookEvent {
  seq: number;
  emitter_node_id: string;
  kind: string;
  /** Milliseconds since the Unix epoch. */
  ts: number;
  payload_json: string;
  dedup_key: string;
  tier: HookTier;
}
export interface HookAck {
  acked_seq: number;
}

/** Receives events; an event is retired once its seq is acked. */
export interface Hooks {
  onEvent(ev: HookEvent): Promise<HookAck>;
}

/** The contract of each plugin kind. */
export interface PluginContracts {
  workspace: Workspace;
  pool: Pool;
  router: Router;
  provisioner: Provisioner;
  hooks: Hooks;
}
