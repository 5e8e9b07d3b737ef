/**
 * SPEC §2's registration (`version(nodes/{id}) == 0`): a second process with
 * a live node's id is refused after the previous registration had TTL + 3 s
 * to expire, and exits; the live node is untouched. The id contains
 * "connect" on purpose: the refusal quotes it, and it must not read as an
 * unreachable etcd (retried forever, the node marked unhealthy).
 */
import assert from "node:assert/strict";
import { startEtcd, startNode, waitFor } from "../harness/mod.ts";

const TTL_S = 2;

Deno.test("a second process with a live node's id exits 1 after TTL + 3 s, naming the id; the live node keeps its records", async () => {
  await using etcd = await startEtcd();
  await using live = await startNode(etcd, {
    nodeId: "connect-1",
    leaseTtlS: TTL_S,
  });
  const client = etcd.client();
  const before = (await client.get("/boi/nodes/connect-1").exec()).kvs[0];
  const t0 = Date.now();
  const twin = await startNode(etcd, {
    nodeId: "connect-1",
    leaseTtlS: TTL_S,
    waitRegistered: false,
  });
  try {
    const status = await waitFor("the twin to exit", () => twin.exitStatus, {
      timeoutMs: (TTL_S + 3) * 1000 + 15_000,
    });
    const took = Date.now() - t0;
    assert.equal(status.code, 1, twin.logTail(20));
    assert.ok(took >= (TTL_S + 3) * 1000, `exited after ${took} ms`);
    const line = twin.logs().find((l) => l.msg === "start failed");
    assert.ok(line, twin.logTail(20));
    assert.equal(
      line.error,
      "node id connect-1 is already registered by a live node: pick another BOI_NODE_ID",
    );
  } finally {
    await twin.close();
  }
  const after = (await client.get("/boi/nodes/connect-1").exec()).kvs[0];
  assert.equal(after?.mod_revision, before.mod_revision, "the live record");
  assert.equal(JSON.parse(after.value.toString()).pid, live.pid);
});
