/**
 * The plugin crash budget survives a node crash (SPEC §7: "crash list stored
 * in etcd"): real etcd, a real node process SIGKILLed and started again, and
 * the mock plugin crashing on its first health probe every time.
 */
import assert from "node:assert/strict";
import { startEtcd, startNode } from "../harness/mod.ts";
import {
  pluginArgv,
  pluginsFile,
  readPlugin,
  waitPlugin,
} from "./plugin_util.ts";

Deno.test("crashes recorded before a node crash count after it: the restarted node reaches unstable after the 4th crash in total", async () => {
  await using etcd = await startEtcd();
  const file = await pluginsFile({
    hooks: {
      argv: pluginArgv("mock.ts"),
      // Answers the handshake, then dies on the first health probe.
      env: { BOI_MOCK_CRASH_AFTER: "1" },
      health_interval_s: 1,
    },
  });
  // A lease long enough that the records outlive the SIGKILLed process
  // until the new one has read them.
  await using n = await startNode(etcd, {
    nodeId: "node-a",
    leaseTtlS: 15,
    env: { BOI_PLUGINS: file },
  });
  await waitPlugin(
    etcd,
    "node-a",
    "hooks",
    (r) => r.crashes.length >= 2,
    30_000,
  );
  n.kill("SIGKILL");
  await n.exited;
  const before = await readPlugin(etcd, "node-a", "hooks");
  assert.ok(before, "the record lives on under the dead process's lease");
  const k = before.crashes.length;
  assert.ok(k >= 2 && k < 4, `crashes before the restart: ${k}`);

  const mark = n.logs().length;
  await n.spawn();
  const after = () => n.logs().slice(mark);
  const restored = await n.waitForLog(
    (l) => l.msg === "plugin crash list restored" && l.plugin === "hooks",
    15_000,
  );
  assert.equal(restored.crashes, k);
  await n.waitForLog(
    (l) =>
      l.msg === "plugin unstable" && l.plugin === "hooks" &&
      after().includes(l),
    30_000,
  );
  const spawnedAfter =
    after().filter((l) => l.msg === "plugin spawned" && l.plugin === "hooks")
      .length;
  assert.equal(
    spawnedAfter,
    4 - k,
    `${k} crashes before the restart: unstable after ${
      4 - k
    } more incarnations`,
  );
  await n.waitRegistered();
  const rec = await waitPlugin(
    etcd,
    "node-a",
    "hooks",
    (r) => r.state === "unstable",
    15_000,
  );
  assert.equal(rec.crashes.length, 4);
  for (const t of before.crashes) {
    assert.ok(rec.crashes.includes(t), `crash ${t} of before the restart kept`);
  }
});
