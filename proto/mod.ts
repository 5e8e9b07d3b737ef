/**
 * The plugin protocol (SPEC §7): version constants and the five gRPC
 * services. Messages, their codecs and the services' RPCs are generated from
 * the `.proto` files beside this module into `gen/` (scripts/gen_proto.sh,
 * kept current by gen_test.ts): the one definition of every plugin message.
 * @module
 */
import { Buffer } from "node:buffer";
import type * as grpc from "@grpc/grpc-js";
import { WorkspaceDefinition } from "./gen/boi/workspace/v1/workspace.ts";
import { PoolDefinition } from "./gen/boi/pool/v1/pool.ts";
import { RouterDefinition } from "./gen/boi/router/v1/router.ts";
import { ProvisionerDefinition } from "./gen/boi/provisioner/v1/provisioner.ts";
import { HooksDefinition } from "./gen/boi/hooks/v1/hooks.ts";

/** Protocol major: core refuses a plugin that reports another one. */
export const PROTO_MAJOR = 1;
/**
 * Protocol minor: a plugin with a newer one is accepted with a warning.
 * 1 added the `Mux` stream (capability `mux`, common.proto) and the
 * Prepare spec cache (capability `spec_cache`, workspace.proto).
 */
export const PROTO_MINOR = 1;

export { isPluginKind, PLUGIN_KINDS, type PluginKind } from "./kinds.ts";
import type { PluginKind } from "./kinds.ts";

/** The generated description of each kind's service (RPC names, message types, streaming). */
export const SERVICE_DEFINITIONS = {
  workspace: WorkspaceDefinition,
  pool: PoolDefinition,
  router: RouterDefinition,
  provisioner: ProvisionerDefinition,
  hooks: HooksDefinition,
} as const;

/** Fully qualified gRPC service name of each kind, e.g. `boi.pool.v1.Pool`. */
export const SERVICE_NAMES: Record<PluginKind, string> = {
  workspace: WorkspaceDefinition.fullName,
  pool: PoolDefinition.fullName,
  router: RouterDefinition.fullName,
  provisioner: ProvisionerDefinition.fullName,
  hooks: HooksDefinition.fullName,
};

/** A loaded service: the grpc-js definition, keyed by RPC name (`Prepare`). */
export interface PluginService {
  definition: grpc.ServiceDefinition;
}

/**
 * grpc-js carries every message as the bytes the generated codecs made
 * (node/exec/grpc_codec.ts encodes and decodes, so a malformed message is a
 * WireError naming its field, on both transports alike).
 */
const toBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const asIs = (b: Buffer): Buffer => b;

const cache = new Map<PluginKind, PluginService>();

/** The grpc-js service of `kind` (built once), with byte-level (de)serializers. */
export function pluginService(kind: PluginKind): PluginService {
  let service = cache.get(kind);
  if (service) return service;
  const def = SERVICE_DEFINITIONS[kind];
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const m of Object.values(def.methods)) {
    definition[m.name] = {
      path: `/${def.fullName}/${m.name}`,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: toBuffer,
      requestDeserialize: asIs,
      responseSerialize: toBuffer,
      responseDeserialize: asIs,
      originalName: m.name,
    };
  }
  service = { definition: definition as grpc.ServiceDefinition };
  cache.set(kind, service);
  return service;
}
