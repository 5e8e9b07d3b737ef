/**
 * The Router step of SPEC §5.2 with real nodes and real router plugin
 * processes (the mock, serving the router kind): its preference decides who
 * runs the tasks HRW would have spread, and a router that never answers
 * costs the Route deadline, not the task.
 */
import assert from "node:assert/strict";
import { hrwWinner } from "../../node/core/hrw.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import { quickSpec } from "./hooks_util.ts";
import { pluginArgv, pluginsFile } from "./plugin_util.ts";

const NODES = ["node-a", "node-b", "node-c"];

/** A plugins file whose router is the mock with `env`. */
function routerPlugins(env: Record<string, string>): Promise<string> {
  return pluginsFile({
    router: { argv: pluginArgv("mock.ts"), env, ready_timeout_s: 15 },
  });
}

Deno.test("router: every node's router prefers node-b, so node-b runs every task HRW would have spread over three", async () => {
  const plugins = await routerPlugins({ BOI_MOCK_ROUTE_PREFER: "node-b" });
  // Slots for every task at once: the preferred node claims them all before
  // any other node's spill-over delay runs out. That delay is 10 s here, not
  // the default 1 s: a node stalled for 1 s under a loaded CI would lose a task
  // to spill-over, as designed, and fail the test for it.
  await using c = await startCluster(NODES, {
    workersMax: 16,
    env: { BOI_PLUGINS: plugins, BOI_SPILL_AFTER_MS: "10000" },
  });
  const { spec_id, task_ids } = await dispatch(c, quickSpec("routed", 12));
  const owners = new Set(task_ids.map((id) => hrwWinner(id, NODES)));
  assert.ok(owners.size > 1, `HRW alone would spread them: ${[...owners]}`);
  const envs = await waitTerminal(c, spec_id, 30_000);
  assert.deepEqual(
    envs.filter((e) => e.state !== "DONE" || e.ran_on !== "node-b")
      .map((e) => `${e.task_id}: ${e.state} on ${e.ran_on}`),
    [],
  );
});

Deno.test("router: a router that never answers costs each task the Route deadline, then HRW decides", async () => {
  const plugins = await routerPlugins({ BOI_MOCK_HANG: "Route" });
  // Spill-over after 10 s, not 1 s: the non-owner's clock starts at its own
  // Route timeout, so with 1 s an owner stalled for 1 s under load lost a
  // task to it (a red .ci/run: ran on node-a, HRW said node-b).
  await using c = await startCluster(["node-a", "node-b"], {
    env: { BOI_PLUGINS: plugins, BOI_SPILL_AFTER_MS: "10000" },
  });
  const t0 = performance.now();
  const { spec_id, task_ids } = await dispatch(c, quickSpec("unrouted", 6));
  const envs = await waitTerminal(c, spec_id, 30_000);
  const ms = performance.now() - t0;
  assert.deepEqual(
    envs.filter((e) => e.state !== "DONE").map((e) => e.task_id),
    [],
  );
  // Each ran where HRW put it, after the 2 s deadline of its Route call.
  for (const e of envs) {
    assert.equal(e.ran_on, hrwWinner(e.task_id, ["node-a", "node-b"]));
  }
  assert.ok(ms >= 2000, `done in ${Math.round(ms)} ms: before the deadline?`);
  assert.equal(envs.length, task_ids.length);
});
