/**
 * The `mux` transport end to end: core's PluginConnection against real
 * plugin processes (the mock, served by the SDK) over their Unix sockets.
 * Negotiation, the 1.0 fallback, corr ids, status codes, deadlines,
 * cancellation and many calls sharing batches.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  PluginCallError,
  PluginConnection,
  socketTarget,
} from "./grpc_client.ts";
import { CODECS } from "./grpc_codec.ts";
import { spawnRequest } from "./test_spawn_request.ts";
import type { WorkerEvent } from "./contracts.ts";
import { SERVICE_NAMES } from "../../proto/mod.ts";
import type { PluginKind } from "../../proto/mod.ts";
import {
  pluginArgv,
  PluginProcess,
  POOL_ENV,
  tempDir,
  withPlugin,
} from "../../plugins/test_util.ts";

/** Starts the mock as `kind`, connects, handshakes as core does. */
function withMock(
  kind: PluginKind,
  env: Record<string, string>,
  fn: (
    conn: PluginConnection,
    p: PluginProcess,
    socket: string,
  ) => Promise<void>,
): Promise<void> {
  const extra = kind === "pool" ? ["--allow-run", POOL_ENV] : [];
  return withPlugin("mock.ts", kind, {
    extra,
    env: { BOI_LOG_LEVEL: "debug", ...env },
  }, fn);
}

const route = (task_id: string) => ({
  task_id,
  requires: { os: "linux", task: task_id },
  candidates: [{ node_id: "a", caps: { os: "linux" } }],
});

Deno.test("mux: both sides announce it, calls go over the stream with their corr ids", async () => {
  await withMock("router", {}, async (conn, p) => {
    assert.equal(conn.transport, "mux");
    assert.deepEqual(await conn.health(), { ok: true, detail: "ok" });
    const r = await conn.unary(CODECS.router.route, route("s.t"), {
      corr_id: "corr-mux-1",
    });
    assert.deepEqual(r.requires, { os: "linux", task: "s.t" });
    await p.stderr.waitFor(
      "the Route call's log line",
      (l) => l.includes("corr-mux-1"),
    );
    const line = p.logs().find((l) => l.corr_id === "corr-mux-1");
    assert.equal(line?.rpc, "Route");
  });
});

Deno.test("mux: a 1.0 plugin is called with plain RPCs; it has no Mux RPC at all", async () => {
  await withMock(
    "router",
    { BOI_MOCK_PROTO_MINOR: "0" },
    async (conn, _p, socket) => {
      assert.equal(conn.transport, "unary");
      const r = await conn.unary(CODECS.router.route, route("s.old"));
      assert.deepEqual(r.requires, { os: "linux", task: "s.old" });
      assert.deepEqual(await conn.health(), { ok: true, detail: "ok" });
      // Calling Mux on it anyway: UNIMPLEMENTED, so core must not.
      const client = new grpc.Client(
        socketTarget(socket),
        grpc.credentials.createInsecure(),
      );
      try {
        const code = await new Promise<number>((resolve) => {
          const call = client.makeBidiStreamRequest(
            `/${SERVICE_NAMES.router}/Mux`,
            (b: Uint8Array) => b as never,
            (b) => b,
            new grpc.Metadata(),
            {},
          );
          call.on("data", () => {});
          call.on("error", () => {});
          call.on("status", (s: grpc.StatusObject) => resolve(s.code));
          call.end();
        });
        assert.equal(code, grpc.status.UNIMPLEMENTED);
      } finally {
        client.close();
      }
    },
  );
});

Deno.test("mux: a core that does not announce it gets plain calls from a mux plugin", async () => {
  const dir = await tempDir("boi-mux-");
  const socket = `${dir}/p.sock`;
  const p = new PluginProcess(pluginArgv("mock.ts", [], { socket }), {
    BOI_PLUGIN_SOCKET: socket,
    BOI_PLUGIN_KIND: "router",
  });
  const conn = new PluginConnection("router", socket);
  try {
    await p.ready();
    const hs = await conn.handshake({
      core_version: "1.0-core",
      proto_major: 1,
      proto_minor: 0,
      capabilities: [],
    });
    assert.ok(hs.capabilities.includes("mux"));
    assert.equal(conn.transport, "unary");
    assert.equal(
      (await conn.unary(CODECS.router.route, route("s.u"))).requires.task,
      "s.u",
    );
  } finally {
    conn.close();
    await p.closeStdin().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mux: 300 concurrent calls on the one stream each get their own answer", async () => {
  await withMock("router", {}, async (conn) => {
    const ids = Array.from({ length: 300 }, (_, i) => `s.c${i}`);
    const answers = await Promise.all(
      ids.map((id) => conn.unary(CODECS.router.route, route(id))),
    );
    assert.deepEqual(answers.map((a) => a.requires.task), ids);
  });
});

Deno.test("mux: a handler's error keeps its status code; a workspace call works", async () => {
  await withMock("workspace", {}, async (conn) => {
    assert.equal(conn.transport, "mux");
    await assert.rejects(
      conn.unary(CODECS.workspace.prepare, {
        spec_id: "s",
        task_id: "../../etc",
        spec_yaml: "",
        hints: {},
      }),
      (e: unknown) =>
        e instanceof PluginCallError &&
        e.code === grpc.status.INVALID_ARGUMENT && e.rpc === "Prepare" &&
        e.details.includes("task_id"),
    );
    const ok = await conn.unary(CODECS.workspace.prepare, {
      spec_id: "s",
      task_id: "s.t",
      spec_yaml: "",
      hints: {},
    });
    assert.ok((await Deno.stat(ok.workdir)).isDirectory);
    await conn.unary(CODECS.workspace.cleanup, {
      spec_id: "s",
      task_id: "s.t",
      workdir: ok.workdir,
    });
    assert.equal(await Deno.stat(ok.workdir).then(() => 1, () => 0), 0);
  });
});

Deno.test("mux: a deadline fails DEADLINE_EXCEEDED, an abort CANCELLED; the plugin's handler is cancelled and the stream goes on", async () => {
  await withMock("router", { BOI_MOCK_HANG: "Route" }, async (conn, p) => {
    const t0 = Date.now();
    await assert.rejects(
      conn.unary(CODECS.router.route, route("s.late"), {
        timeout_ms: 300,
        corr_id: "corr-late",
      }),
      (e: unknown) =>
        e instanceof PluginCallError &&
        e.code === grpc.status.DEADLINE_EXCEEDED && e.corr_id === "corr-late",
    );
    assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
    const ctl = new AbortController();
    const call = conn.unary(CODECS.router.route, route("s.abort"), {
      signal: ctl.signal,
    });
    setTimeout(() => ctl.abort(), 100);
    await assert.rejects(
      call,
      (e: unknown) =>
        e instanceof PluginCallError && e.code === grpc.status.CANCELLED,
    );
    // The stream still serves other calls.
    assert.deepEqual(await conn.health(), { ok: true, detail: "ok" });
    // The hung handler saw its signal abort (the mock's hang rejects then),
    // and a cancelled call is not answered.
    await p.stderr.waitFor(
      "the plugin's end of the call past its deadline",
      (l) => l.includes("corr-late") && l.includes("cancelled by caller"),
    );
    assert.equal(p.logs().filter((l) => l.msg === "call failed").length, 0);
  });
});

Deno.test("mux: a Spawn stream delivers its events; leaving early cancels it in the plugin", async () => {
  await withMock("pool", {}, async (conn, p) => {
    const events: WorkerEvent[] = [];
    for await (
      const ev of conn.stream(
        CODECS.pool.spawn,
        spawnRequest({ shell: "echo hello; echo oops >&2; exit 4" }),
      )
    ) events.push(ev);
    assert.equal(events.length, 4, JSON.stringify(events));
    assert.ok("started" in events[0]);
    const text = (k: "stdout" | "stderr") =>
      events.map((e) =>
        k in e
          ? new TextDecoder().decode((e as Record<typeof k, Uint8Array>)[k])
          : ""
      ).join("");
    assert.equal(text("stdout"), "hello\n");
    assert.equal(text("stderr"), "oops\n");
    assert.deepEqual(events.at(-1), {
      exit: { code: 4, signal: null, error: null },
    });

    const req = spawnRequest({ argv: ["sleep", "30"] });
    for await (
      const ev of conn.stream(CODECS.pool.spawn, req, { corr_id: "corr-left" })
    ) {
      if ("started" in ev) break;
    }
    await p.stderr.waitFor(
      "the plugin's end of the left stream",
      (l) => l.includes("corr-left") && l.includes('"cancelled":true'),
    );
    await conn.unary(CODECS.pool.kill, { ...req, grace_ms: 0 });
  });
});

Deno.test("mux: 8 workers writing 2 MB each at once: every stream gets all its bytes", async () => {
  await withMock("pool", {}, async (conn) => {
    const bytes = 2_000_000;
    const got = await Promise.all(
      Array.from({ length: 8 }, async () => {
        let n = 0;
        let exit = null;
        for await (
          const ev of conn.stream(
            CODECS.pool.spawn,
            spawnRequest({ argv: ["head", "-c", String(bytes), "/dev/zero"] }),
          )
        ) {
          if ("stdout" in ev) n += ev.stdout.length;
          if ("exit" in ev) exit = ev.exit.code;
        }
        return { n, exit };
      }),
    );
    assert.deepEqual(got, Array(8).fill({ n: bytes, exit: 0 }));
  });
});
