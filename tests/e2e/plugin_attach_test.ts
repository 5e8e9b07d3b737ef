/**
 * Attach mode (SPEC §7 "Attach"): the pool is a sidecar this test starts, as
 * another container would; a real node attaches to its socket, runs tasks on
 * it, and reconnects when the sidecar is killed and started again.
 */
import assert from "node:assert/strict";
import {
  cli,
  listEnvelopes,
  makeTempDir,
  processAlive,
  readCaps,
  waitFor,
} from "../harness/mod.ts";
import { notYet } from "../harness/wait.ts";
import {
  pluginArgv as sidecarArgv,
  PluginProcess,
  POOL_ENV,
} from "../../plugins/test_util.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import { pluginsFile, waitPlugin } from "./plugin_util.ts";

/** The reference pool started by hand on `socket`, as a sidecar container would. */
async function startSidecar(
  socket: string,
  dataDir: string,
  n: number,
): Promise<PluginProcess> {
  const p = new PluginProcess(
    sidecarArgv("pool_local.ts", ["--allow-run", POOL_ENV], { socket }),
    {
      BOI_PLUGIN_SOCKET: socket,
      BOI_PLUGIN_KIND: "pool",
      BOI_PLUGIN_ID: `sidecar-pool-${n}`,
      BOI_PLUGIN_DATA_DIR: dataDir,
      BOI_LOG_LEVEL: "debug", // a line per call, with its rpc
    },
  );
  await p.ready(15_000);
  return p;
}

/** Spawn calls the sidecar answered (its per-call debug lines). */
const spawns = (p: PluginProcess) =>
  p.logs().filter((l) => l.rpc === "Spawn" && l.msg === "stream").length;

const spec = (tag: string) =>
  `name: ${tag}\ntasks:\n` +
  [0, 1, 2].map((i) => `  - id: t${i}\n    run: echo ${tag}-${i}\n`).join("");

Deno.test("attach: a real node runs its tasks on a pool sidecar it did not start; sidecar killed → node degraded, sidecar back → node reconnects and runs tasks again", async () => {
  const dir = await makeTempDir("boi-attach-");
  const socket = `${dir}/pool.sock`;
  let sidecar = await startSidecar(socket, dir, 1);
  try {
    const file = await pluginsFile({
      pool: { socket, health_interval_s: 0.5, ready_timeout_s: 30 },
    });
    await using c = await startCluster([{
      nodeId: "node-a",
      env: { BOI_PLUGINS: file },
    }]);
    const a = c.node("node-a");
    const rec = await waitPlugin(
      c.etcd,
      "node-a",
      "pool",
      (r) => r.state === "ready",
    );
    assert.deepEqual(rec.crashes, []);
    // Core spawned no pool of its own.
    assert.ok(
      !a.logs().some((l) => l.msg === "plugin spawned" && l.plugin === "pool"),
    );
    const first = await waitTerminal(
      c,
      (await dispatch(c, spec("one"))).spec_id,
    );
    assert.deepEqual(first.map((e) => e.state), ["DONE", "DONE", "DONE"]);
    // The sidecar's own log shows the Spawns came to it.
    await waitFor(
      "the sidecar logged the node's 3 Spawn calls",
      () => spawns(sidecar) >= 3 || notYet(sidecar.stderr.lines.slice(-3)),
    );

    // Kill the sidecar the hard way: no socket cleanup, no goodbye.
    sidecar.child.kill("SIGKILL");
    await sidecar.exit();
    const down = await waitPlugin(
      c.etcd,
      "node-a",
      "pool",
      (r) => r.state !== "ready" && r.crashes.length === 1,
    );
    console.log(`sidecar killed: ${down.state}, ${down.reason}`);
    assert.match(down.reason ?? "", /connection lost|socket/);
    await waitFor("node-a degraded while its pool is away", async () => {
      const caps = await readCaps(c.etcd, "node-a");
      return caps?.value.dynamic.health === "degraded" ? true : notYet(caps);
    }, { timeoutMs: 5000, intervalMs: 50 });

    sidecar = await startSidecar(socket, dir, 2);
    const back = await waitPlugin(
      c.etcd,
      "node-a",
      "pool",
      (r) => r.state === "ready",
      30_000,
    );
    assert.equal(back.crashes.length, 1, "one disconnect, one crash");
    await waitFor("node-a healthy again", async () => {
      const caps = await readCaps(c.etcd, "node-a");
      return caps?.value.dynamic.health === "ok" ? true : notYet(caps);
    }, { timeoutMs: 5000, intervalMs: 50 });
    const second = await waitTerminal(
      c,
      (await dispatch(c, spec("two"))).spec_id,
    );
    assert.deepEqual(second.map((e) => e.state), ["DONE", "DONE", "DONE"]);
    await waitFor(
      "the restarted sidecar served the new tasks",
      () => spawns(sidecar) >= 3 || notYet(sidecar.stderr.lines.slice(-3)),
    );
    // `plugin restart pool` of an attached pool only reconnects: the task
    // running on the sidecar goes on and its own exit counts (1 attempt).
    const long = await dispatch(
      c,
      "name: long\ntasks:\n  - id: t0\n    run: sleep 3\n    retries: 0\n",
    );
    await waitFor("the long task RUNNING", async () => {
      const [e] = (await listEnvelopes(c.etcd, { specId: long.spec_id }))
        .map((s) => s.value);
      return e?.state === "RUNNING" ? e : notYet(e);
    }, { timeoutMs: 15_000, intervalMs: 50 });
    const r = await cli(c.etcd, [
      "plugin",
      "restart",
      "pool",
      "--node",
      "node-a",
    ]);
    assert.equal(r.code, 0, r.explain());
    assert.match(
      r.stdout,
      /^pool on node-a: ready\nrunning work: kept \(an attached pool is reconnected to, not restarted\)\n$/,
    );
    const [kept] = await waitTerminal(c, long.spec_id);
    assert.equal(kept.state, "DONE", `${kept.state}: ${kept.last_error}`);
    assert.equal(kept.attempts, 1, "the running attempt was not cut");
    // Stopping the node lets go of the sidecar; it keeps running.
    await a.stop();
    assert.ok(await processAlive(sidecar.child.pid), "sidecar still running");
  } finally {
    sidecar.child.kill("SIGKILL");
    await sidecar.exit().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
