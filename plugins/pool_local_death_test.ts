/**
 * The reference pool plugin when its spawner dies: it exits (its tasks are
 * lost), and before it does, the groups the spawner left are SIGKILLed. They
 * were reaped only by the plugin's next incarnation before: with the crash
 * budget spent, or the node stopping, there is none, and the task ran on
 * beside its re-run elsewhere.
 */
import assert from "node:assert/strict";
import { CODECS } from "../node/exec/grpc_codec.ts";
import { spawnRequest } from "../node/exec/test_spawn_request.ts";
import { processGroupAlive, processTable } from "../tests/harness/process.ts";
import { POOL_ENV, withPlugin } from "./test_util.ts";

Deno.test("pool_local: a dead spawner's task groups are killed before the plugin exits, not by its next incarnation", async () => {
  let group = 0;
  try {
    await withPlugin("pool_local.ts", "pool", {
      extra: ["--allow-run", POOL_ENV],
    }, async (conn, p, _socket, dir) => {
      const it = conn.stream(
        CODECS.pool.spawn,
        spawnRequest({ task_id: "t1", argv: ["sleep", "300"], workdir: dir }),
      )[Symbol.asyncIterator]();
      const first = (await it.next()).value;
      assert.ok(first && "started" in first, JSON.stringify(first));
      group = first.started.pid;
      assert.ok(await processGroupAlive(group), "the task runs");
      const spawner = (await processTable()).find((r) =>
        r.ppid === p.child.pid && r.state !== "Z"
      );
      assert.ok(spawner, "the spawner under the plugin");
      const next = it.next().then(
        (r) => `ended: ${JSON.stringify(r.value)}`,
        (e) => `failed: ${(e as Error).message}`,
      );
      Deno.kill(spawner.pid, "SIGKILL");
      // Lost, not ended: an exit would spend the task's retry (or fail it).
      assert.match(await next, /^failed: .*UNAVAILABLE/);
      const status = await p.child.status;
      assert.equal(status.code, 70, "the plugin exits as a crashed pool");
      assert.equal(
        await processGroupAlive(group),
        false,
        `the task's group ${group} outlived its pool`,
      );
    });
  } finally {
    if (group > 0) {
      try {
        Deno.kill(-group, "SIGKILL"); // what the pool did not
      } catch { /* gone */ }
    }
  }
});
