/**
 * GrpcPool against the reference pool plugin, run by the supervisor: the
 * Pool contract over a real socket, process trees checked in the process
 * table.
 */
import assert from "node:assert/strict";
import { GrpcPool } from "./grpc_pool.ts";
import { PluginCallError } from "./grpc_client.ts";
import type { WorkerEvent } from "./contracts.ts";
import { spawnRequest } from "./test_spawn_request.ts";
import { PluginSupervisor } from "../plugins/supervisor.ts";
import { pluginArgv, POOL_ENV, tempDir } from "../../plugins/test_util.ts";
import { waitFor } from "../../tests/harness/wait.ts";
import {
  processGroupAlive,
  processTable,
} from "../../tests/harness/process.ts";

async function startPool(env: Record<string, string> = {}) {
  const dataDir = await tempDir("boi-pool-");
  const sup = new PluginSupervisor({
    plugin: {
      name: "pool",
      kind: "pool",
      argv: pluginArgv("pool_local.ts", ["--allow-run", POOL_ENV]),
      env,
    },
    node_id: "n1",
    data_dir: dataDir,
    ready_timeout_ms: 5000,
    restart_delay_ms: 50,
    log: { log() {} },
  });
  const st = await sup.start();
  assert.equal(st.state, "ready", st.reason ?? "");
  const pool = new GrpcPool({
    connection: () => sup.connection({ wait_ms: 5000 }),
  });
  return {
    sup,
    pool,
    dataDir,
    async [Symbol.asyncDispose]() {
      try {
        await sup.stop();
      } finally {
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      }
    },
  };
}

/** Reads a Spawn stream to its end; `started` resolves at its started event. */
function follow(stream: AsyncIterable<WorkerEvent>) {
  const started = Promise.withResolvers<number>();
  const events = (async () => {
    const out: WorkerEvent[] = [];
    try {
      for await (const ev of stream) {
        out.push(ev);
        if ("started" in ev) started.resolve(ev.started.pid);
      }
    } finally {
      started.reject(new Error("stream ended before started"));
    }
    return out;
  })();
  started.promise.catch(() => {});
  return { started: started.promise, events };
}

const text = (events: WorkerEvent[]) =>
  events.map((e) => "stdout" in e ? new TextDecoder().decode(e.stdout) : "")
    .join("");

Deno.test("GrpcPool + pool_local: a double Spawn runs one worker process and both streams get its output", async () => {
  await using p = await startPool();
  const req = spawnRequest({
    task_id: "s.double",
    claim_token: "7",
    shell: 'echo "worker $$"; read _ < "$BOI_GATE"; echo done',
    env: { BOI_GATE: `${p.dataDir}/gate` },
  });
  // The worker waits on a FIFO, so it is surely running while we look.
  await new Deno.Command("mkfifo", { args: [`${p.dataDir}/gate`] }).output();
  const a = follow(p.pool.spawn(req));
  const pid = await a.started;
  const b = follow(p.pool.spawn(req));
  assert.equal(await b.started, pid, "the second Spawn re-attached");

  // Workers are children of the pool's spawner, the plugin's one child.
  const pluginPid = p.sup.pid!;
  const table = (await processTable()).filter((r) => r.state !== "Z");
  const spawners = table.filter((r) => r.ppid === pluginPid).map((r) => r.pid);
  assert.equal(spawners.length, 1, "one spawner");
  const workers = table.filter((r) => r.ppid === spawners[0]);
  assert.deepEqual(workers.map((r) => r.pid), [pid], "exactly one worker");

  await Deno.writeTextFile(`${p.dataDir}/gate`, "go\n");
  const [ea, eb] = [await a.events, await b.events];
  for (const events of [ea, eb]) {
    assert.equal(text(events), `worker ${pid}\ndone\n`);
    assert.deepEqual(events.at(-1), {
      exit: { code: 0, signal: null, error: null },
    });
    assert.equal(events.filter((e) => "started" in e).length, 1);
  }
});

Deno.test("GrpcPool + pool_local: Kill takes the whole process tree", async () => {
  await using p = await startPool();
  const req = spawnRequest({
    task_id: "s.tree",
    shell: "sleep 30 & sleep 30 & echo up; wait",
  });
  const w = follow(p.pool.spawn(req));
  const pgid = await w.started;
  await waitFor(
    "both sleeps running",
    async () =>
      (await processTable()).filter((r) => r.pgrp === pgid).length >= 3,
  );
  await p.pool.kill({ ...req, grace_ms: 0 });
  const events = await w.events;
  assert.deepEqual(events.at(-1), {
    exit: { code: null, signal: "SIGKILL", error: null },
  });
  assert.equal(await processGroupAlive(pgid), false, "no process left");
});

Deno.test("GrpcPool + pool_local: a plugin crash breaks the stream with PluginCallError; the restarted plugin reaps the orphan", async () => {
  await using p = await startPool();
  const req = spawnRequest({ task_id: "s.orphan", argv: ["sleep", "30"] });
  const w = follow(p.pool.spawn(req));
  const pgid = await w.started;
  // Recorded for the next incarnation before we pull the plug.
  await waitFor("the worker group recorded", async () => {
    const f = await Deno.readTextFile(
      `${p.sup.pluginDataDir}/pool_local.groups.json`,
    ).catch(() => '{"g":[]}');
    const state = JSON.parse(f) as { g: [number, number][] };
    return state.g.some(([g]) => g === pgid);
  });
  Deno.kill(p.sup.pid!, "SIGKILL");
  await assert.rejects(w.events, PluginCallError);
  await waitFor(
    "incarnation 2 ready",
    () => p.sup.status.state === "ready" && p.sup.status.incarnation === 2,
  );
  await waitFor(
    "the orphaned worker reaped",
    async () => !(await processGroupAlive(pgid)),
  );
});

Deno.test("GrpcPool + pool_local: SIGTERM to the plugin kills its running workers", async () => {
  await using p = await startPool();
  const req = spawnRequest({ task_id: "s.shutdown", argv: ["sleep", "30"] });
  const w = follow(p.pool.spawn(req));
  const pgid = await w.started;
  const r = await p.sup.stop();
  assert.deepEqual(r, { forced: false, code: 0, signal: null });
  // The plugin drained the stream before it went: the exit got through.
  assert.deepEqual((await w.events).at(-1), {
    exit: { code: null, signal: "SIGTERM", error: null },
  });
  assert.equal(await processGroupAlive(pgid), false);
});

Deno.test("GrpcPool + pool_local in noop mode: every task exits 0 at once, no process", async () => {
  await using p = await startPool({ BOI_POOL_MODE: "noop" });
  assert.deepEqual(p.sup.status.capabilities, ["reattach", "noop", "mux"]);
  const req = spawnRequest({ task_id: "s.noop", argv: ["false"] });
  const events: WorkerEvent[] = [];
  for await (const ev of p.pool.spawn(req)) events.push(ev);
  assert.deepEqual(events, [
    { started: { pid: 0 } },
    { exit: { code: 0, signal: null, error: null } },
  ]);
  await p.pool.kill({ ...req, grace_ms: 0 });
});
