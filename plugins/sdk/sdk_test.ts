/**
 * The SDK as a plugin author gets it: real plugin processes under the
 * `plugin` permission set, started by hand (no supervisor), called over
 * their Unix sockets by core's gRPC client.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  PluginCallError,
  PluginConnection,
} from "../../node/exec/grpc_client.ts";
import { CODECS } from "../../node/exec/grpc_codec.ts";
import { PROTO_MAJOR, PROTO_MINOR } from "../../proto/mod.ts";
import { pluginArgv, PluginProcess, tempDir } from "../test_util.ts";

async function withPlugin(
  script: string,
  env: Record<string, string>,
  fn: (
    p: PluginProcess,
    conn: PluginConnection,
    socket: string,
  ) => Promise<void>,
  kind: "router" | "workspace" | "hooks" = "router",
): Promise<void> {
  const dir = await tempDir("boi-sdk-");
  const socket = `${dir}/p.sock`;
  const p = new PluginProcess(pluginArgv(script, [], { socket }), {
    BOI_PLUGIN_SOCKET: socket,
    BOI_PLUGIN_ID: `${kind}-test-1`,
    BOI_PLUGIN_KIND: kind,
    ...env,
  });
  const conn = new PluginConnection(kind, socket);
  try {
    await fn(p, conn, socket);
  } finally {
    conn.close();
    await p.closeStdin().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

/** A socket file left by a SIGKILLed process (Deno removes its own on close). */
async function leaveStaleSocket(path: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      // accept() keeps it alive: an exiting Deno would remove its socket.
      `const l = Deno.listen({ transport: "unix", path: ${
        JSON.stringify(path)
      } }); console.log("up"); await l.accept();`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // "up": the socket exists
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  assert.ok((await Deno.lstat(path)).isSocket, "a stale socket is in place");
}

Deno.test("servePlugin: removes a stale socket, prints BOI_READY, answers Handshake and Health, logs corr_id", async () => {
  const dir = await tempDir("boi-sdk-");
  await using _ = {
    [Symbol.asyncDispose]: () =>
      Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
  const socket = `${dir}/p.sock`;
  await leaveStaleSocket(socket);
  const p = new PluginProcess(
    pluginArgv("router_passthrough.ts", [], { socket }),
    {
      BOI_PLUGIN_SOCKET: socket,
      BOI_PLUGIN_ID: "router-test-1",
      BOI_PLUGIN_KIND: "router",
      BOI_LOG_LEVEL: "debug", // per-call lines are debug
    },
  );
  const conn = new PluginConnection("router", socket);
  try {
    await p.ready();
    assert.deepEqual(
      p.stdout.lines,
      ["BOI_READY"],
      "BOI_READY alone on stdout, nothing else",
    );
    // A core that announces nothing (like a 1.0 core) gets plain calls.
    const hs = await conn.handshake({
      core_version: "test",
      proto_major: PROTO_MAJOR,
      proto_minor: PROTO_MINOR,
      capabilities: [],
    });
    assert.deepEqual(hs, {
      plugin_name: "router_passthrough",
      plugin_version: "1.0.0",
      proto_major: PROTO_MAJOR,
      proto_minor: PROTO_MINOR,
      capabilities: ["mux"],
    });
    assert.equal(conn.transport, "unary");
    assert.deepEqual(await conn.health(), { ok: true, detail: "ok" });
    const r = await conn.unary(CODECS.router.route, {
      task_id: "s.t",
      requires: { os: "linux" },
      candidates: [{ node_id: "a", caps: { os: "linux" } }],
    }, { corr_id: "corr-sdk-1" });
    assert.deepEqual(r, { requires: { os: "linux" }, preferred_node_ids: [] });
    await p.stderr.waitFor(
      "the Route call's log line",
      (l) => l.includes("corr-sdk-1"),
    );
    const line = p.logs().find((l) => l.corr_id === "corr-sdk-1");
    assert.equal(line?.rpc, "Route");
    assert.equal(line?.plugin_id, "router-test-1");
  } finally {
    conn.close();
    const status = await p.closeStdin();
    assert.equal(status.code, 0, "stdin EOF: exit 0");
  }
  assert.equal(
    await Deno.lstat(socket).then(() => true, () => false),
    false,
    "the socket is removed on the way out",
  );
});

Deno.test("servePlugin: exits 0 when stdin closes (the core died)", async () => {
  await withPlugin("router_passthrough.ts", {}, async (p) => {
    await p.ready();
    const t0 = Date.now();
    const status = await p.closeStdin(5000);
    assert.equal(status.code, 0);
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(p.logs().some((l) => l.reason === "stdin closed"));
  });
});

Deno.test("servePlugin: SIGTERM is a graceful exit 0", async () => {
  await withPlugin("router_passthrough.ts", {}, async (p) => {
    await p.ready();
    p.child.kill("SIGTERM");
    const status = await p.exit(5000);
    assert.equal(status.code, 0);
    assert.ok(p.logs().some((l) => l.reason === "SIGTERM"));
  });
});

Deno.test("servePlugin: a PluginError from a handler becomes its gRPC status", async () => {
  const root = await tempDir("boi-sdk-ws-");
  await withPlugin(
    "workspace_dir.ts",
    { BOI_WORKSPACE_ROOT: root },
    async (p, conn) => {
      await p.ready();
      await assert.rejects(
        conn.unary(CODECS.workspace.prepare, {
          spec_id: "s",
          task_id: "../../etc",
          spec_yaml: "",
          hints: {},
        }),
        (e: unknown) =>
          e instanceof PluginCallError &&
          e.code === grpc.status.INVALID_ARGUMENT &&
          e.details.includes("task_id"),
      );
      await assert.rejects(
        conn.unary(CODECS.workspace.cleanup, {
          spec_id: "s",
          task_id: "s.t",
          workdir: "/etc",
        }),
        (e: unknown) =>
          e instanceof PluginCallError &&
          e.code === grpc.status.INVALID_ARGUMENT &&
          e.details.includes("not under"),
      );
      const ok = await conn.unary(CODECS.workspace.prepare, {
        spec_id: "s",
        task_id: "s.t",
        spec_yaml: "",
        hints: {},
      });
      assert.equal(ok.workdir, `${root}/s/s.t`);
      assert.ok((await Deno.stat(ok.workdir)).isDirectory);
    },
    "workspace",
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("servePlugin: the mock reports the protocol it is told to", async () => {
  await withPlugin(
    "mock.ts",
    { BOI_MOCK_PROTO_MAJOR: "2", BOI_MOCK_PROTO_MINOR: "7" },
    async (p, conn) => {
      await p.ready();
      const hs = await conn.handshake({
        core_version: "test",
        proto_major: PROTO_MAJOR,
        proto_minor: PROTO_MINOR,
        capabilities: [],
      });
      assert.equal(hs.proto_major, 2);
      assert.equal(hs.proto_minor, 7);
      assert.equal(hs.plugin_name, "mock");
      // The plugin refuses nothing: it logs the mismatch and lets core decide.
      await p.stderr.waitFor(
        "the mismatch warning",
        (l) => l.includes("another protocol major"),
      );
    },
  );
});

Deno.test("servePlugin: BOI_MOCK_NO_READY serves but never prints BOI_READY", async () => {
  await withPlugin(
    "mock.ts",
    { BOI_MOCK_NO_READY: "1" },
    async (p, conn) => {
      await p.stderr.waitFor(
        "the serving log line",
        (l) => l.includes('"serving"'),
      );
      assert.deepEqual(await conn.health(), { ok: true, detail: "ok" });
      assert.deepEqual(p.stdout.lines, []);
    },
  );
});
