/**
 * The boi plugin SDK: a plugin is a Deno script that calls `servePlugin` with
 * its kind and handlers (SPEC §7).
 *
 * @example
 * ```ts
 * import { servePlugin } from "./plugins/sdk/mod.ts";
 * await servePlugin({
 *   kind: "hooks",
 *   name: "hooks_stdout",
 *   version: "1.0.0",
 *   onEvent(ev, ctx) {
 *     ctx.log.info("event", { kind: ev.kind });
 *     return { acked_seq: ev.seq };
 *   },
 * });
 * ```
 * @module
 */
export { servePlugin } from "./serve.ts";
export type {
  CallContext,
  PluginBaseOptions,
  PluginHandlers,
  PluginServer,
  ServePluginOptions,
} from "./serve.ts";
export type { SpecCacheOptions } from "./spec_cache.ts";
export { PluginError } from "./errors.ts";
export type { PluginErrorCode } from "./errors.ts";
export { parseLevel, PluginLogger } from "./log.ts";
export type { LogLevel } from "./log.ts";
export { pluginEnv, pluginLogger } from "./env.ts";
export { absolutePath, insideRoot, pathSegment } from "./paths.ts";
export { removeTree } from "./remove_tree.ts";
export type { PluginEnv } from "./env.ts";
export { PROTO_MAJOR, PROTO_MINOR } from "../../proto/mod.ts";
export type { PluginKind } from "../../proto/mod.ts";
export type * from "../../node/plugins/contracts.ts";
