/**
 * Container health check of a plugin sidecar (compose/compose.yaml): calls
 * the plugin's gRPC `Health` on its socket, as the node's supervisor does, and
 * exits 0 when it answers `ok` within 3 s, else 1 with the reason on stderr.
 * A socket file that merely exists says nothing about the process behind it.
 *
 * Usage: deno run -q --allow-env=GRPC_* --allow-net=unix:<socket>
 *   --allow-read=<socket> --allow-write=<socket> compose/plugin_health.ts <kind> <socket>
 * (connecting to a Unix socket needs all three on its path, as binding does).
 */
import { PluginConnection } from "../node/exec/grpc_client.ts";
import { PLUGIN_KINDS, type PluginKind } from "../proto/mod.ts";

const [kind, socket] = Deno.args;
if (!(PLUGIN_KINDS as readonly string[]).includes(kind) || !socket) {
  console.error(
    `usage: plugin_health.ts <${PLUGIN_KINDS.join("|")}> <socket>: got ${
      JSON.stringify(Deno.args)
    }`,
  );
  Deno.exit(2);
}
const conn = new PluginConnection(kind as PluginKind, socket, {
  timeout_ms: 3000,
});
let code = 0;
try {
  await conn.waitForReady(3000);
  const h = await conn.health();
  if (!h.ok) {
    console.error(`${socket}: Health says not ok: ${JSON.stringify(h)}`);
    code = 1;
  }
} catch (e) {
  console.error(`${socket}: ${(e as Error).message}`);
  code = 1;
} finally {
  conn.close();
}
Deno.exit(code);
