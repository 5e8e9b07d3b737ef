/**
 * Attach mode against real sidecar processes (the mock plugin started by the
 * test, as another container would): no spawn, handshake, reconnect.
 */
import assert from "node:assert/strict";
import { PluginSupervisor } from "./supervisor.ts";
import type { PluginStatus } from "./supervisor_types.ts";
import { pluginArgv, PluginProcess, tempDir } from "../../plugins/test_util.ts";
import { notYet, waitFor } from "../../tests/harness/wait.ts";
import { processAlive } from "../../tests/harness/process.ts";

/** The mock on `socket`; it appends `{ts, rpc, corr_id}` per call to `<socket>.calls`. */
async function sidecar(socket: string, n: number): Promise<PluginProcess> {
  const p = new PluginProcess(pluginArgv("mock.ts", [], { socket }), {
    BOI_PLUGIN_SOCKET: socket,
    BOI_PLUGIN_KIND: "hooks",
    BOI_PLUGIN_ID: `sidecar-${n}`,
    BOI_MOCK_RECORD: `${socket}.calls`,
  });
  await p.ready(15_000);
  return p;
}

function attached(
  dir: string,
  socket: string,
  states: PluginStatus[],
  opts: { ready_timeout_ms?: number; health_interval_ms?: number } = {},
): PluginSupervisor {
  return new PluginSupervisor({
    plugin: { name: "hooks", kind: "hooks", argv: [], socket },
    node_id: "n1",
    data_dir: dir,
    ready_timeout_ms: opts.ready_timeout_ms ?? 8000,
    health_interval_ms: opts.health_interval_ms ?? 300,
    health_timeout_ms: 1000,
    restart_delay_ms: 50,
    onState: (s) => void states.push(s),
    log: { log() {} },
  });
}

Deno.test("attach: handshake with a sidecar core did not start; stop() lets go of it and leaves it running", async () => {
  const dir = await tempDir("boi-att-");
  const socket = `${dir}/side.sock`;
  const side = await sidecar(socket, 1);
  try {
    const states: PluginStatus[] = [];
    const sup = attached(dir, socket, states);
    const st = await sup.start();
    assert.equal(st.state, "ready", st.reason ?? "");
    assert.equal(st.plugin_name, "mock");
    assert.equal(st.pid, null, "no process of ours");
    assert.equal(sup.socket, socket);
    assert.deepEqual(await (await sup.connection()).health(), {
      ok: true,
      detail: "ok",
    });
    await sup.stop();
    assert.equal(sup.status.state, "stopped");
    assert.ok(await processAlive(side.child.pid), "the sidecar still runs");
  } finally {
    await side.closeStdin();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("attach: no sidecar on the socket → start_failed ready_timeout naming the socket, counted as a crash", async () => {
  const dir = await tempDir("boi-att-");
  const socket = `${dir}/none.sock`;
  try {
    const sup = attached(dir, socket, [], { ready_timeout_ms: 500 });
    const st = await sup.start();
    await sup.stop();
    assert.equal(st.state, "start_failed");
    assert.equal(
      st.reason,
      `ready_timeout after 500 ms: nothing accepted connections on ${socket}`,
    );
    assert.equal(st.crashes.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("attach: a sidecar replaced between two probes is handshaken again (a new incarnation, one crash)", async () => {
  const dir = await tempDir("boi-att-");
  const socket = `${dir}/side.sock`;
  const old = await sidecar(socket, 1);
  // The new sidecar binds elsewhere and its socket is renamed over the old
  // one: the swap is atomic, so no probe sees the path empty or refusing.
  const next = await sidecar(`${dir}/next.sock`, 2);
  try {
    const states: PluginStatus[] = [];
    // Probes rarely: the replacement happens between two of them.
    const sup = attached(dir, socket, states, { health_interval_ms: 1500 });
    assert.equal((await sup.start()).state, "ready");
    await Deno.rename(`${dir}/next.sock`, socket);
    await waitFor(
      "incarnation 2 ready",
      () =>
        (sup.status.state === "ready" && sup.status.incarnation === 2) ||
        notYet(states.map((s) => `${s.incarnation}:${s.state}:${s.reason}`)),
      { timeoutMs: 15_000 },
    );
    const crash = states.find((s) => s.state === "crashed");
    assert.match(
      crash?.reason ?? "",
      /^socket replaced \(the sidecar restarted\)/,
    );
    assert.equal(sup.status.crashes.length, 1);
    await sup.stop();
    const calls = await Deno.readTextFile(`${dir}/next.sock.calls`);
    assert.match(calls, /"Handshake"/, "the new sidecar was handshaken");
  } finally {
    await old.closeStdin();
    await next.closeStdin();
    await Deno.remove(dir, { recursive: true });
  }
});
