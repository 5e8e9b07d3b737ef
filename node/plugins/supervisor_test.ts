/**
 * The supervisor against real plugin processes (the mock and reference
 * plugins, and plain `sh` where a plugin must misbehave before it could
 * serve). Waits are on conditions with deadlines, never on sleeps.
 */
import assert from "node:assert/strict";
import {
  type PluginSpec,
  type PluginStatus,
  PluginSupervisor,
  type PluginSupervisorOptions,
} from "./supervisor.ts";
import { GrpcHooks } from "../exec/grpc_hooks.ts";
import { pluginArgv, tempDir } from "../../plugins/test_util.ts";
import { waitFor } from "../../tests/harness/wait.ts";
import { processAlive } from "../../tests/harness/process.ts";

interface Harness {
  sup: PluginSupervisor;
  spec: PluginSpec;
  states: PluginStatus[];
  crashLists: number[][];
  logs: { level: string; msg: string; fields: Record<string, unknown> }[];
  /** Pids of every incarnation spawned, in order. */
  pids: number[];
  [Symbol.asyncDispose](): Promise<void>;
}

/** A supervisor with short timeouts that records what it reports. */
async function harness(
  plugin: Partial<PluginSpec> & { env?: Record<string, string> },
  options: Partial<PluginSupervisorOptions> = {},
): Promise<Harness> {
  const dataDir = await tempDir("boi-sup-");
  const spec: PluginSpec = {
    name: plugin.name ?? "hooks",
    kind: plugin.kind ?? "hooks",
    argv: plugin.argv ?? pluginArgv("mock.ts"),
    env: plugin.env ?? {},
  };
  const h: Omit<Harness, "sup"> & { sup?: PluginSupervisor } = {
    spec,
    states: [],
    crashLists: [],
    logs: [],
    pids: [],
    async [Symbol.asyncDispose]() {
      try {
        await h.sup!.stop();
      } finally {
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      }
    },
  };
  h.sup = new PluginSupervisor({
    plugin: spec,
    node_id: "n1",
    data_dir: dataDir,
    core_version: "test",
    // Generous: a loaded CI machine can take seconds to start Deno.
    ready_timeout_ms: 8000,
    // Slow enough that a loaded machine never looks unhealthy by accident.
    health_interval_ms: 1000,
    health_timeout_ms: 1000,
    restart_delay_ms: 50,
    shutdown_grace_ms: 2000,
    onState: (s) => {
      h.states.push(s);
      if (s.pid !== null && h.pids.at(-1) !== s.pid) h.pids.push(s.pid);
    },
    onCrash: (c) => {
      h.crashLists.push(c);
    },
    log: {
      log: (level, msg, fields = {}) => h.logs.push({ level, msg, fields }),
    },
    ...options,
  });
  return h as Harness;
}

const seen = (h: Harness, state: string, incarnation?: number) =>
  h.states.find((s) =>
    s.state === state &&
    (incarnation === undefined || s.incarnation === incarnation)
  );

Deno.test("supervisor: no BOI_READY → start_failed ready_timeout within ready_timeout + 1 s, process gone", async () => {
  await using h = await harness(
    { env: { BOI_MOCK_NO_READY: "1" } },
    { ready_timeout_ms: 2000, restart_delay_ms: 60_000 },
  );
  const t0 = Date.now();
  const st = await h.sup.start();
  const took = Date.now() - t0;
  assert.equal(st.state, "start_failed");
  assert.match(st.reason!, /^ready_timeout/);
  assert.ok(took >= 2000 && took < 3000, `took ${took} ms`);
  assert.equal(st.crashes.length, 1, "a failed start counts as a crash");
  assert.equal(h.pids.length, 1);
  assert.equal(await processAlive(h.pids[0]), false, "the plugin is gone");
  assert.equal(st.pid, null);
});

Deno.test("supervisor: stderr never counts as ready; the plugin's env is only what core hands it", async () => {
  Deno.env.set("BOI_ETCD_ENDPOINTS", "http://127.0.0.1:1");
  try {
    await using h = await harness({
      name: "sh",
      argv: [
        "sh",
        "-c",
        'env > "$BOI_PLUGIN_DATA_DIR/env"; echo BOI_READY >&2; exec sleep 30',
      ],
      env: { EXTRA: "{name}@{node_id}" },
    }, { ready_timeout_ms: 1000, restart_delay_ms: 60_000 });
    const st = await h.sup.start();
    assert.equal(st.state, "start_failed");
    assert.match(st.reason!, /^ready_timeout/);
    assert.equal(await processAlive(h.pids[0]), false);
    const env = Object.fromEntries(
      (await Deno.readTextFile(`${h.sup.pluginDataDir}/env`)).trim().split(
        "\n",
      ).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    assert.equal(env.BOI_PLUGIN_ID, "sh-n1-1");
    assert.equal(env.BOI_PLUGIN_SOCKET, h.sup.socket);
    assert.ok(h.sup.socket.endsWith("/plugins/sh.sock"));
    assert.equal(env.BOI_PLUGIN_KIND, "hooks");
    assert.equal(env.BOI_PLUGIN_DATA_DIR, h.sup.pluginDataDir);
    assert.equal(env.EXTRA, "sh@n1", "placeholders filled in env");
    assert.equal(env.BOI_ETCD_ENDPOINTS, undefined, "no etcd for plugins");
  } finally {
    Deno.env.delete("BOI_ETCD_ENDPOINTS");
  }
});

Deno.test("supervisor: a plugin that exits before BOI_READY fails at once, with its exit", async () => {
  await using h = await harness(
    { name: "sh", argv: ["sh", "-c", "exit 7"] },
    { ready_timeout_ms: 10_000, restart_delay_ms: 60_000 },
  );
  const t0 = Date.now();
  const st = await h.sup.start();
  assert.equal(st.state, "start_failed");
  assert.equal(st.reason, "exited before BOI_READY: code 7");
  assert.ok(Date.now() - t0 < 5000);
});

Deno.test("supervisor: protocol major 2 → refused proto_version_mismatch and stopped", async () => {
  await using h = await harness({ env: { BOI_MOCK_PROTO_MAJOR: "2" } });
  const st = await h.sup.start();
  assert.equal(st.state, "refused");
  assert.match(st.reason!, /^proto_version_mismatch: plugin 2\.1, core 1\.1/);
  assert.equal(st.crashes.length, 0, "a refusal is not a crash");
  assert.equal(st.pid, null);
  assert.equal(await processAlive(h.pids[0]), false);
  await assert.rejects(h.sup.connection(), /is refused/);
});

Deno.test("supervisor: a newer protocol minor is accepted with a warning", async () => {
  await using h = await harness({ env: { BOI_MOCK_PROTO_MINOR: "9" } });
  const st = await h.sup.start();
  assert.equal(st.state, "ready");
  assert.equal(st.proto_minor, 9);
  assert.match(st.warnings[0], /newer than core's 1\.1/);
  assert.ok(h.logs.some((l) => l.level === "warn" && /newer/.test(l.msg)));
});

Deno.test("supervisor: SIGKILLed plugin → crash recorded and restarted", async () => {
  await using h = await harness({});
  const st = await h.sup.start();
  assert.equal(st.state, "ready");
  assert.equal(st.plugin_name, "mock");
  const first = h.sup.pid!;
  Deno.kill(first, "SIGKILL");
  await waitFor(
    "incarnation 2 ready",
    () => h.sup.status.state === "ready" && h.sup.status.incarnation === 2,
  );
  assert.equal(seen(h, "crashed", 1)?.reason, "exited: signal SIGKILL");
  assert.equal(h.sup.status.crashes.length, 1);
  assert.deepEqual(h.crashLists.map((c) => c.length), [1]);
  assert.notEqual(h.sup.pid, first);
  // The new incarnation serves, under its own id.
  const hooks = new GrpcHooks({ connection: () => h.sup.connection() });
  const ack = await hooks.onEvent({
    seq: 7,
    emitter_node_id: "n1",
    kind: "task.completed",
    ts: Date.now(),
    payload_json: "{}",
    dedup_key: "k7",
    tier: "best_effort",
  });
  assert.equal(ack.acked_seq, 7);
  assert.ok(h.logs.some((l) => l.fields.plugin_id === "hooks-n1-2"));
});

Deno.test("supervisor: the 4th crash within the window → unstable; restart() brings it back", async () => {
  // Answers the handshake, then dies on the first health probe: every time.
  await using h = await harness({ env: { BOI_MOCK_CRASH_AFTER: "1" } }, {
    health_interval_ms: 300,
    health_timeout_ms: 300,
  });
  await h.sup.start();
  await waitFor("unstable", () => h.sup.status.state === "unstable", {
    timeoutMs: 20_000,
  });
  const st = h.sup.status;
  assert.equal(st.crashes.length, 4);
  assert.equal(st.incarnation, 4);
  assert.equal(st.pid, null);
  assert.deepEqual(h.crashLists.map((c) => c.length), [1, 2, 3, 4]);
  assert.equal(h.states.filter((s) => s.state === "crashed").length, 4);
  await assert.rejects(h.sup.connection({ wait_ms: 100 }), /is unstable/);

  delete h.spec.env!.BOI_MOCK_CRASH_AFTER; // the operator fixed it
  const back = await h.sup.restart();
  assert.equal(back.state, "ready");
  assert.equal(back.incarnation, 5);
  assert.deepEqual(back.crashes, [], "restart() forgets the crash list");
  assert.deepEqual(h.crashLists.at(-1), []);
  assert.deepEqual(await (await h.sup.connection()).health(), {
    ok: true,
    detail: "ok",
  });
});

Deno.test("supervisor: a crash list handed in can start it unstable; it restarts once the window passes", async () => {
  const now = Date.now();
  await using h = await harness({}, {
    crash_window_ms: 4000,
    // Four crashes in the window: the oldest leaves it ~500 ms from now.
    crashes: [now - 3500, now - 3000, now - 2000, now - 1000],
  });
  const st = await h.sup.start();
  assert.equal(st.state, "unstable");
  assert.equal(st.pid, null);
  await waitFor("ready after the window", () => h.sup.status.state === "ready");
  assert.equal(h.sup.status.incarnation, 1);
  assert.equal(h.sup.status.crashes.length, 3);
});

Deno.test("supervisor: health probes that hang 3 times → unhealthy → killed and restarted", async () => {
  await using h = await harness({ env: { BOI_MOCK_HANG: "Health" } }, {
    health_interval_ms: 200,
    health_timeout_ms: 150,
  });
  assert.equal((await h.sup.start()).state, "ready");
  await waitFor("incarnation 2 starting", () => h.sup.status.incarnation >= 2);
  const sick = seen(h, "unhealthy", 1);
  assert.match(sick!.reason!, /^3 health probes failed in a row/);
  assert.equal(await processAlive(h.pids[0]), false);
  assert.ok(h.sup.status.crashes.length >= 1, "unhealthy counts as a crash");
});

Deno.test("supervisor: Health ok: false 3 times → unhealthy", async () => {
  await using h = await harness({ env: { BOI_MOCK_UNHEALTHY: "1" } }, {
    health_interval_ms: 100,
  });
  assert.equal((await h.sup.start()).state, "ready");
  await waitFor("unhealthy", () => seen(h, "unhealthy", 1));
  assert.match(seen(h, "unhealthy", 1)!.reason!, /not ok: BOI_MOCK_UNHEALTHY/);
});

Deno.test("supervisor: stop() is SIGTERM, grace, then SIGKILL for a plugin that ignores it", async () => {
  await using h = await harness(
    { env: { BOI_MOCK_IGNORE_SIGTERM: "1", BOI_MOCK_IGNORE_STDIN: "1" } },
    { shutdown_grace_ms: 500 },
  );
  assert.equal((await h.sup.start()).state, "ready");
  const pid = h.sup.pid!;
  const t0 = Date.now();
  const r = await h.sup.stop();
  assert.equal(r?.forced, true);
  assert.equal(r?.signal, "SIGKILL");
  assert.ok(Date.now() - t0 >= 500);
  assert.equal(await processAlive(pid), false);
  assert.equal(h.sup.status.state, "stopped");
});

Deno.test("supervisor: stop() of a well-behaved plugin is graceful; stdin EOF alone also ends it", async () => {
  await using h = await harness({});
  assert.equal((await h.sup.start()).state, "ready");
  assert.deepEqual(await h.sup.stop(), {
    forced: false,
    code: 0,
    signal: null,
  });
  assert.equal((await h.sup.restart()).state, "ready");
  assert.deepEqual(await h.sup.stop({ via: "stdin" }), {
    forced: false,
    code: 0,
    signal: null,
  });
  assert.equal(h.states.at(-1)?.state, "stopped");
});
