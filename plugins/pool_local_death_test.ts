/**
 * The reference pool plugin when its spawner dies: it exits (its tasks are
 * lost), and before it does, the groups the spawner left are SIGKILLed. They
 * were reaped only by the plugin's next incarnation before: with the crash
 * budget spent, or the node stopping, there is none, and the task ran on
 * beside its re-run elsewhere.
 */
import assert from "node:assert/strict";
import {
  CORE_CAPABILITIES,
  PluginConnection,
} from "../node/exec/grpc_client.ts";
import { CODECS } from "../node/exec/grpc_codec.ts";
import { spawnRequest } from "../node/exec/test_spawn_request.ts";
import { PROTO_MAJOR, PROTO_MINOR } from "../proto/mod.ts";
import { processGroupAlive, processTable } from "../tests/harness/process.ts";
import { pluginArgv, PluginProcess, POOL_ENV, tempDir } from "./test_util.ts";

Deno.test("pool_local: a dead spawner's task groups are killed before the plugin exits, not by its next incarnation", async () => {
  const dir = await tempDir("boi-pooldeath-");
  const socket = `${dir}/p.sock`;
  const p = new PluginProcess(
    pluginArgv("pool_local.ts", ["--allow-run", POOL_ENV], { socket }),
    {
      BOI_PLUGIN_SOCKET: socket,
      BOI_PLUGIN_ID: "pool-death-1",
      BOI_PLUGIN_KIND: "pool",
      BOI_PLUGIN_DATA_DIR: dir,
    },
  );
  const conn = new PluginConnection("pool", socket);
  let group = 0;
  try {
    await p.ready();
    await conn.handshake({
      core_version: "test",
      proto_major: PROTO_MAJOR,
      proto_minor: PROTO_MINOR,
      capabilities: [...CORE_CAPABILITIES],
    });
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
  } finally {
    if (group > 0) {
      try {
        Deno.kill(-group, "SIGKILL"); // what the pool did not
      } catch { /* gone */ }
    }
    conn.close();
    await p.closeStdin().catch(() => {});
    await p.child.status.catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
