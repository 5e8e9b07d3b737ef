/** The partition proxy: forwarding, blackholes, resets and healing, and a real node cut off by it. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connectEtcd } from "../../node/etcd_client.ts";
import { deadline } from "../../node/etcd_errors.ts";
import {
  notYet,
  readNode,
  REPO_ROOT,
  startEtcd,
  startNode,
  startProxy,
  uniquePrefix,
  waitFor,
} from "./mod.ts";

Deno.test("proxy: forwards, blackholes, resets and heals a path to etcd", async () => {
  await using etcd = await startEtcd();
  await using proxy = startProxy(etcd);
  const c = connectEtcd([proxy.endpoint], { failFast: true });
  try {
    await c.put("/h/p").value("through").options(deadline(2000));
    assert.equal(
      await c.get("/h/p").options(deadline(2000)).string(),
      "through",
    );
    assert.ok(proxy.connections > 0);

    proxy.cut("blackhole");
    const t0 = Date.now();
    await assert.rejects(
      c.get("/h/p").options(deadline(500)).string(),
      /deadline/i,
    );
    assert.ok(Date.now() - t0 >= 400, "a blackhole hangs until the deadline");
    await etcd.client().put("/h/p").value("changed"); // etcd itself is fine

    proxy.restore();
    assert.equal(
      await waitFor(
        "a read through the healed proxy",
        () => c.get("/h/p").options(deadline(1000)).string(),
        { timeoutMs: 10_000 },
      ),
      "changed",
    );

    proxy.cut("reset");
    assert.equal(proxy.connections, 0);
    await assert.rejects(c.get("/h/p").options(deadline(2000)).string());
    proxy.restore();
    await waitFor(
      "a read after the reset",
      () => c.get("/h/p").options(deadline(1000)).string(),
      { timeoutMs: 10_000 },
    );
  } finally {
    c.close();
  }
  assert.throws(() => startProxy("a:1,b:2"), /one per member/);
});

Deno.test({
  name:
    "startNode through a proxy: a partition expires the node's lease, healing re-registers it",
  ignore: !existsSync(`${REPO_ROOT}/node/main.ts`),
  async fn() {
    await using etcd = await startEtcd();
    await using proxy = startProxy(etcd);
    const prefix = uniquePrefix();
    await using node = await startNode(etcd, {
      nodeId: "node-p",
      prefix,
      endpoints: proxy.endpoint,
      leaseTtlS: 2,
    });
    const before = await readNode(etcd, "node-p", prefix);
    assert.equal(before?.value.pid, node.pid);

    proxy.cut("blackhole");
    await waitFor(
      "node-p's registration to expire while it is cut off",
      async () => (await readNode(etcd, "node-p", prefix)) === null,
      { timeoutMs: 10_000 },
    );
    assert.equal(node.running, true, "the node keeps running while cut off");

    proxy.restore();
    const after = await waitFor(
      "node-p to register again after the partition heals",
      async () => {
        const rec = await readNode(etcd, "node-p", prefix);
        return rec && rec.lease !== before!.lease ? rec : notYet(rec);
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(after.value.pid, node.pid);
  },
});
