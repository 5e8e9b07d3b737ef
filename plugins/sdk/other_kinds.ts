/**
 * Another kind's Handshake, answered by an SDK plugin (see below why).
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  PLUGIN_KINDS,
  type PluginKind,
  pluginService,
} from "../../proto/mod.ts";
import type { Wire } from "../../node/exec/grpc_codec.ts";

/**
 * Answers the Handshake of every other kind's service with UNIMPLEMENTED
 * from a handler, so `boi plugin test` finds the kind without grpc-js's
 * unknown-method path: that path answers before reading the request, and
 * Deno 2.9's nghttp2 then aborts the whole plugin (SIGABRT, assertion
 * `stream->closed_next == NULL` in find_stream_on_goaway_func) when the
 * client closes its connection. Under load on this 2-core machine (4 CPU
 * hogs, 3 probers) 2 of 120 fresh plugins aborted within five probes; 0 of
 * 240 with these handlers. Other unknown methods still take that path.
 */
export function addOtherKindsHandshake(
  server: grpc.Server,
  kind: PluginKind,
): void {
  for (const other of PLUGIN_KINDS) {
    if (other === kind) continue;
    const { definition } = pluginService(other);
    server.addService({ Handshake: definition.Handshake }, {
      Handshake: (_call: unknown, callback: grpc.sendUnaryData<Wire>) =>
        callback({
          code: grpc.status.UNIMPLEMENTED,
          details: `this plugin serves ${kind}, not ${other}`,
        }),
    });
  }
}
