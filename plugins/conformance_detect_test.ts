import assert from "node:assert/strict";
import { runCli } from "../cli/test_util.ts";
import { detectPluginKind } from "./conformance_detect.ts";
import { pluginArgv, withPlugin } from "./test_util.ts";
import { PluginConnection } from "../node/exec/grpc_client.ts";
import { PluginCallError } from "../node/exec/plugin_call_error.ts";
import { PROTO_MAJOR, PROTO_MINOR } from "../proto/mod.ts";

Deno.test("plugin kind detection: a reference plugin is known by the service that answers Handshake", async () => {
  assert.deepEqual(
    await detectPluginKind(pluginArgv("router_passthrough.ts")),
    { kind: "router" },
  );
  assert.deepEqual(
    await detectPluginKind(pluginArgv("hooks_jsonl.ts")),
    { kind: "hooks" },
  );
});

Deno.test("plugin kind detection: a command that never serves says why", async () => {
  const r = await detectPluginKind(["sh", "-c", "exit 3"]);
  assert.equal(r.kind, null);
  assert.match(
    (r as { reason: string }).reason,
    /exited before BOI_READY .*BOI_PLUGIN_KIND empty/,
  );
});

Deno.test("boi plugin test <cmd...> (SPEC §7, §11) runs without --kind", async () => {
  const r = await runCli([
    "plugin",
    "test",
    ...pluginArgv("router_passthrough.ts"),
  ]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^✓ lifecycle: handshake: /m);
  assert.match(r.out, /^ok: \d+ checks passed$/m);
});

Deno.test("boi plugin test <cmd...>: a kind that cannot be told is one line asking for --kind, exit 1", async () => {
  const r = await runCli(["plugin", "test", "sh", "-c", "exit 3"]);
  assert.equal(r.code, 1, r.out + r.err);
  assert.equal(r.err.trim().split("\n").length, 1, r.err);
  assert.match(
    r.err,
    /^plugin test: cannot tell the plugin's kind: .*: pass --kind <workspace\|pool\|router\|provisioner\|hooks>/,
  );
});

Deno.test("an SDK plugin answers another kind's Handshake from a handler that names its own kind", async () => {
  // grpc-js's own unknown-method answer is what made Deno's nghttp2 abort
  // the plugin when the prober hung up (serve.ts, addOtherKindsHandshake).
  await withPlugin(
    "router_passthrough.ts",
    "router",
    {},
    async (_c, _p, socket) => {
      for (
        const other of ["workspace", "pool", "provisioner", "hooks"] as const
      ) {
        const conn = new PluginConnection(other, socket);
        try {
          await assert.rejects(
            () =>
              conn.handshake({
                core_version: "test",
                proto_major: PROTO_MAJOR,
                proto_minor: PROTO_MINOR,
                capabilities: [],
              }),
            (e: Error) => {
              assert.ok(e instanceof PluginCallError, String(e));
              assert.equal(e.code, 12, e.message);
              assert.match(
                e.message,
                new RegExp(`this plugin serves router, not ${other}`),
              );
              return true;
            },
          );
        } finally {
          conn.close();
        }
      }
    },
  );
});
