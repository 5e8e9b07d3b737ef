/**
 * The five plugin contracts, shaped like their gRPC services (SPEC §7), over
 * the messages generated from the `.proto` files (proto/gen). Workspace and
 * Pool come from node/exec/contracts.ts; core, the gRPC clients and the
 * plugin SDK all derive their types from here.
 * @module
 */
import type { Pool, Workspace } from "../exec/contracts.ts";
import type * as common from "../../proto/gen/boi/common/v1/common.ts";
import type * as router from "../../proto/gen/boi/router/v1/router.ts";
import type * as prov from "../../proto/gen/boi/provisioner/v1/provisioner.ts";
import type * as hooks from "../../proto/gen/boi/hooks/v1/hooks.ts";

export type {
  CleanupRequest,
  KillRequest,
  Pool,
  PrepareRequest,
  PrepareResponse,
  SpawnRequest,
  WorkerEvent,
  WorkerExit,
  Workspace,
} from "../exec/contracts.ts";
export type { PluginKind } from "../../proto/mod.ts";

/** Core → plugin, the first call after `BOI_READY`. */
export type HandshakeRequest = common.HandshakeRequest;
/** The plugin's own name, version and protocol; core judges the major and minor. */
export type HandshakeResponse = common.HandshakeResponse;
/** Answer to the periodic health probe. */
export type HealthResponse = common.HealthResponse;

/** A node that could run the task, with its capabilities. */
export type RouteCandidate = router.Candidate;
export type RouteRequest = router.RouteRequest;
export type RouteResponse = router.RouteResponse;

/** May rewrite a task's requires and rank its candidate nodes. */
export interface Router {
  route(req: RouteRequest): Promise<RouteResponse>;
}

export type AllocateRequest = prov.AllocateRequest;
export type AllocateResponse = prov.AllocateResponse;
export type DeallocateRequest = prov.DeallocateRequest;

/** Brings up a node that joins with the token; takes it back on Deallocate. */
export interface Provisioner {
  allocate(req: AllocateRequest): Promise<AllocateResponse>;
  deallocate(req: DeallocateRequest): Promise<void>;
}

/** Delivery tier of a hook event (SPEC §8). */
export type HookTier = "best_effort" | "audit";

/** `hooks.v1.OnEventRequest` with `tier` one of its two values (checked on decode). */
export type HookEvent = Omit<hooks.OnEventRequest, "tier"> & { tier: HookTier };
export type HookAck = hooks.OnEventResponse;

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
