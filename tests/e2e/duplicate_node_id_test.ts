/**
 * SPEC §2's registration (`version(nodes/{id}) == 0`): a second process with
 * a live node's id is refused after the previous registration had TTL + 3 s
 * to expire, and exits; the live node is untouched. The id contains
 * "connect" on purpose: the refusal quotes it, and it must not read as an
 * unreachable etcd (retried forever, the node marked unhealthy).
 */
import assert from "node:assert/strict";
import {
  makeTempDir,
  notYet,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";

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

Deno.test("a node restarted while etcd is down waits out its previous registration once etcd answers (an etcd restart extends the old lease), and registers", async () => {
  const ttl = 4;
  await using etcd = await startEtcd();
  const dataDir = await makeTempDir("boi-reboot-");
  try {
    const first = await startNode(etcd, {
      nodeId: "reboot-1",
      leaseTtlS: ttl,
      dataDir,
    });
    const oldLease = (await etcd.client().get("/boi/nodes/reboot-1").exec())
      .kvs[0].lease;
    // The machine goes down: the node dies with etcd, before its lease ends.
    first.kill("SIGKILL");
    await first.exited;
    await etcd.stop();
    await using again = await startNode(etcd, {
      nodeId: "reboot-1",
      leaseTtlS: ttl,
      dataDir,
      waitRegistered: false,
    });
    // etcd stays down longer than the TTL + 3 s wait, then comes back with
    // the old lease renewed for a TTL (a restarted etcd extends every lease).
    await new Promise((r) => setTimeout(r, (ttl + 3) * 1000 + 2000));
    assert.equal(again.exitStatus, null, again.logTail(20));
    await etcd.restart();
    const rec = await waitFor(
      "reboot-1 registered with a new lease",
      async () => {
        if (again.exitStatus !== null) {
          throw new Error(`exited: ${again.logTail(20)}`);
        }
        const kv =
          (await etcd.client().get("/boi/nodes/reboot-1").exec()).kvs[0];
        return kv && kv.lease !== oldLease ? kv : notYet(kv?.lease ?? null);
      },
      { timeoutMs: (ttl + 3) * 1000 + 10_000 },
    );
    assert.equal(JSON.parse(rec.value.toString()).pid, again.pid);
    assert.ok(
      again.logs().some((l) =>
        l.msg ===
          "waiting for a previous registration of this node id to expire"
      ),
      "it found the old record there and waited for it",
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
