/**
 * The plugin protocol (SPEC §7): version constants and the five gRPC services
 * loaded from the `.proto` files beside this module.
 *
 * The `.proto` sources are imported as text, so they travel with the module
 * graph: neither a plugin nor core needs read permission on `proto/`.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import commonProto from "./boi/common/v1/common.proto" with { type: "text" };
import workspaceProto from "./boi/workspace/v1/workspace.proto" with {
  type: "text",
};
import poolProto from "./boi/pool/v1/pool.proto" with { type: "text" };
import routerProto from "./boi/router/v1/router.proto" with { type: "text" };
import provisionerProto from "./boi/provisioner/v1/provisioner.proto" with {
  type: "text",
};
import hooksProto from "./boi/hooks/v1/hooks.proto" with { type: "text" };

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

/** Fully qualified gRPC service name of each kind, e.g. `boi.pool.v1.Pool`. */
export const SERVICE_NAMES: Record<PluginKind, string> = {
  workspace: "boi.workspace.v1.Workspace",
  pool: "boi.pool.v1.Pool",
  router: "boi.router.v1.Router",
  provisioner: "boi.provisioner.v1.Provisioner",
  hooks: "boi.hooks.v1.Hooks",
};

const SOURCES: Record<PluginKind, string> = {
  workspace: workspaceProto,
  pool: poolProto,
  router: routerProto,
  provisioner: provisionerProto,
  hooks: hooksProto,
};

/**
 * How messages map to JS: field names as in the .proto, 64-bit integers as
 * numbers, `bytes` as Buffer, absent optional and oneof fields left out.
 */
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** A loaded service: the server-side definition and the client class. */
export interface PluginService {
  definition: grpc.ServiceDefinition;
  Client: grpc.ServiceClientConstructor;
}

const cache = new Map<PluginKind, PluginService>();

/** Loads (once) the gRPC service of `kind`. */
export function pluginService(kind: PluginKind): PluginService {
  let service = cache.get(kind);
  if (service) return service;
  const root = new protobuf.Root();
  // Imports are resolved by hand: the common file is parsed first.
  protobuf.parse(commonProto, root, { keepCase: true });
  protobuf.parse(SOURCES[kind], root, { keepCase: true });
  const pkg = grpc.loadPackageDefinition(
    protoLoader.fromJSON(root.toJSON(), LOADER_OPTIONS),
  );
  let node: unknown = pkg;
  for (const part of SERVICE_NAMES[kind].split(".")) {
    node = (node as Record<string, unknown>)[part];
  }
  const Client = node as grpc.ServiceClientConstructor;
  service = { definition: Client.service, Client };
  cache.set(kind, service);
  return service;
}

let muxBatch: protobuf.Type | null = null;

/** The `boi.common.v1.MuxBatch` message type (the mux transport's unit). */
export function muxBatchType(): protobuf.Type {
  if (muxBatch) return muxBatch;
  const root = new protobuf.Root();
  protobuf.parse(commonProto, root, { keepCase: true });
  muxBatch = root.lookupType("boi.common.v1.MuxBatch");
  return muxBatch;
}
