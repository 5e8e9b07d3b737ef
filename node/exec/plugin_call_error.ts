/** The error every plugin call fails with, whatever transport carried it. */
import * as grpc from "@grpc/grpc-js";
import type { PluginKind } from "../../proto/mod.ts";

/** A failed plugin call, with the gRPC status and what was called. */
export class PluginCallError extends Error {
  constructor(
    readonly kind: PluginKind,
    readonly rpc: string,
    /** gRPC status code, e.g. 14 (UNAVAILABLE) or 4 (DEADLINE_EXCEEDED). */
    readonly code: number,
    readonly details: string,
    readonly corr_id: string,
  ) {
    super(`${kind} plugin ${rpc}: ${grpc.status[code] ?? code}: ${details}`);
    this.name = "PluginCallError";
  }
}
