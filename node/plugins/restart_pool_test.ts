/**
 * RestartAwarePool against the real reference pool under a real supervisor:
 * a restart ends the running stream as an attempt lost (an error, never the
 * dying pool's SIGTERM exit), and the new incarnation serves new Spawns.
 */
import assert from "node:assert/strict";
import type { WorkerEvent } from "../exec/contracts.ts";
import { spawnRequest } from "../exec/test_spawn_request.ts";
import { pluginArgv, POOL_ENV, tempDir } from "../../plugins/test_util.ts";
import { RestartAwarePool } from "./restart_pool.ts";
import { PluginSupervisor } from "./supervisor.ts";

async function collect(
  it: AsyncIterable<WorkerEvent>,
): Promise<{ events: WorkerEvent[]; error: Error | null }> {
  const events: WorkerEvent[] = [];
  try {
    for await (const ev of it) events.push(ev);
    return { events, error: null };
  } catch (e) {
    return { events, error: e as Error };
  }
}

Deno.test("RestartAwarePool: a restart cuts the running stream as an error (attempt lost); the next Spawn runs on the new incarnation", async () => {
  const dir = await tempDir("boi-rpool-");
  const sup = new PluginSupervisor({
    plugin: {
      name: "pool",
      kind: "pool",
      argv: pluginArgv("pool_local.ts", ["--allow-run", POOL_ENV]),
    },
    node_id: "n1",
    data_dir: dir,
    ready_timeout_ms: 10_000,
    log: { log() {} },
  });
  try {
    assert.equal((await sup.start()).state, "ready");
    const pool = new RestartAwarePool(sup, 15_000);
    const started = Promise.withResolvers<void>();
    const long = collect((async function* () {
      for await (
        const ev of pool.spawn(
          spawnRequest({ task_id: "s.long", shell: "sleep 30" }),
        )
      ) {
        if ("started" in ev) started.resolve();
        yield ev;
      }
    })());
    await started.promise;
    assert.deepEqual(pool.cutForRestart("pool restarted (test)"), ["s.long"]);
    assert.equal((await sup.restart()).state, "ready");
    const cut = await long;
    assert.equal(cut.error?.message, "pool restarted (test)");
    assert.ok(
      !cut.events.some((e) => "exit" in e),
      `no exit passed on: ${JSON.stringify(cut.events)}`,
    );

    const next = await collect(
      pool.spawn(spawnRequest({ task_id: "s.next", shell: "exit 3" })),
    );
    assert.equal(next.error, null);
    const exit = next.events.find((e) => "exit" in e);
    assert.ok(exit && "exit" in exit && exit.exit.code === 3);
    assert.deepEqual(pool.cutForRestart("again"), [], "nothing running");
  } finally {
    await sup.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
