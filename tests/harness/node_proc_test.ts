/** `startNode`: a fake node and the real one, registered, logged, stopped. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import {
  listNodes,
  processAlive,
  readNode,
  REPO_ROOT,
  startEtcd,
  startNode,
  uniquePrefix,
} from "./mod.ts";

const FAKE_NODE = "tests/harness/testdata/fake_node.ts";

Deno.test("startNode: waits for the registration, captures logs, stops", async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  await using node = await startNode(etcd, {
    nodeId: "node-h",
    prefix,
    entry: FAKE_NODE,
    caps: { "x-test-gpu": "yes" },
  });
  const rec = await readNode(etcd, "node-h", prefix);
  assert.equal(rec?.value.pid, node.pid, "registered by this very process");
  assert.equal(rec?.value.addr, node.httpAddr);
  assert.match(node.dataDir, /^\/tmp\//);
  const line = await node.waitForLog((l) => l.msg === "starting", 5000);
  assert.equal(line.caps, "x-test-gpu=yes");
  // The key is written before the line is logged and piped to us: wait for it.
  await node.waitForLog((l) => l.msg === "registered", 5000);
  const body = await fetch(`${node.url}/`).then((r) => r.text());
  assert.equal(body, "ok\n");

  await assert.rejects(
    node.waitForLog((l) => l.msg === "never said", 100),
    /log line of node node-h[\s\S]*"registered"/,
  );

  const status = await node.stop();
  assert.equal(status?.code, 0);
  assert.equal(await processAlive(node.pid), false);
  assert.deepEqual(
    await listNodes(etcd, prefix),
    [],
    "the fake revokes its lease",
  );
  assert.match(await Deno.readTextFile(node.logFile), /"registered"/);

  await node.restart();
  assert.equal((await readNode(etcd, "node-h", prefix))?.value.pid, node.pid);
});

Deno.test("startNode: a node that exits before registering fails fast with its log", async () => {
  await using etcd = await startEtcd();
  const t0 = Date.now();
  await assert.rejects(
    startNode(etcd, {
      nodeId: "node-x",
      entry: FAKE_NODE,
      env: { FAKE_NODE_EXIT: "4" },
      readyTimeoutMs: 20_000,
    }),
    /node node-x exited[\s\S]*exiting as asked/,
  );
  assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
});

Deno.test({
  name: "startNode: the real node registers under its prefix",
  ignore: !existsSync(`${REPO_ROOT}/node/main.ts`),
  async fn() {
    await using etcd = await startEtcd();
    const prefix = uniquePrefix();
    await using node = await startNode(etcd, {
      nodeId: "node-r",
      prefix,
      caps: { "x-test-gpu": "yes" },
      workersMax: 2,
    });
    const rec = await readNode(etcd, "node-r", prefix);
    assert.equal(rec?.value.pid, node.pid);
    assert.ok(rec!.lease !== "0", "the node record is bound to a lease");
    await node.stop();
  },
});
