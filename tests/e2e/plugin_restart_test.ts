/**
 * `boi plugin restart pool` costs the running task nothing (issue 11 item 2):
 * its attempt ends as "attempt lost" — re-queued without spending a retry —
 * and the CLI says so. Real etcd, a real node, the reference pool.
 */
import assert from "node:assert/strict";
import { cli, listEnvelopes, notYet, waitFor } from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import { waitPlugin } from "./plugin_util.ts";

Deno.test("plugin restart pool while a retries: 0 task runs: the attempt is lost (no retry spent), the task still ends DONE, the CLI says so", async () => {
  await using c = await startCluster(["node-a"]);
  await waitPlugin(c.etcd, "node-a", "pool", (r) => r.state === "ready");
  const { spec_id, task_ids } = await dispatch(
    c,
    "name: long\ntasks:\n  - id: t0\n    run: sleep 4\n    retries: 0\n",
  );
  const [task] = task_ids;
  const running = await waitFor(`${task} RUNNING`, async () => {
    const [e] = (await listEnvelopes(c.etcd, { specId: spec_id })).map((s) =>
      s.value
    );
    return e?.state === "RUNNING" ? e : notYet(e);
  }, { timeoutMs: 15_000, intervalMs: 50 });
  assert.equal(running.retries_left, 0);
  assert.equal(running.attempts, 1);

  const r = await cli(c.etcd, [
    "plugin",
    "restart",
    "pool",
    "--node",
    "node-a",
  ]);
  assert.equal(r.code, 0, r.explain());
  assert.match(r.stdout, /^pool on node-a: ready/);
  assert.match(
    r.stdout,
    new RegExp(
      `running work: not drained; 1 running attempt re-queued as attempt lost \\(no retry spent\\): ${
        task.replaceAll(".", "\\.")
      }\\n`,
    ),
  );

  const [done] = await waitTerminal(c, spec_id, 30_000);
  assert.equal(done.state, "DONE", `${done.state}: ${done.last_error}`);
  assert.equal(done.retries_left, 0, "no retry spent");
  assert.equal(done.attempts, 2, "the lost attempt and the one that finished");
  const lost = c.node("node-a").logs().find((l) =>
    l.msg === "worker exited" && l.task_id === task && l.lost === true
  );
  assert.match(String(lost?.error), /restarted \(boi plugin restart\)/);

  // With nothing running, the restart says that too.
  const idle = await cli(c.etcd, [
    "plugin",
    "restart",
    "pool",
    "--node",
    "node-a",
  ]);
  assert.equal(idle.code, 0, idle.explain());
  assert.match(idle.stdout, /running work: none was running/);
});
