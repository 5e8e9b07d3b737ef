import assert from "node:assert/strict";
import { startEtcd } from "../../tests/harness/mod.ts";
import { TxnBatcher } from "./txn_batch.ts";

Deno.test("txn batch: one request, one revision, each transaction judged by its own compares", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  await client.put("/t/taken").value("x");
  const before = await etcd.revision();
  const batcher = new TxnBatcher(client);
  const create = (key: string) =>
    batcher.run([{ key, target: "version", equals: 0 }], [{
      op: "put",
      key,
      value: "v",
    }]);
  // Same turn of the event loop: all leave together.
  const [a, taken, b] = await Promise.all([
    create("/t/a"),
    create("/t/taken"),
    create("/t/b"),
  ]);
  assert.deepEqual([a.ok, taken.ok, b.ok], [true, false, true]);
  assert.equal(a.revision, before + 1);
  assert.equal(b.revision, before + 1);
  assert.equal(await etcd.revision(), before + 1);
  assert.equal(await client.get("/t/taken").string(), "x");
});

Deno.test("txn batch: two writes of one key never share a request (etcd would refuse both)", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  const batcher = new TxnBatcher(client, { maxInFlight: 1 });
  const put = (value: string) =>
    batcher.run([], [{ op: "put", key: "/t/k", value }]);
  const [first, second] = await Promise.all([put("1"), put("2")]);
  assert.ok(first.ok && second.ok);
  assert.ok(second.revision > first.revision);
  assert.equal(await client.get("/t/k").string(), "2");
});

Deno.test("txn batch: an unreachable etcd fails every transaction of the request", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  const batcher = new TxnBatcher(client, { timeoutMs: 1500 });
  await etcd.stop();
  const key = (k: string) =>
    batcher.run([{ key: k, target: "version", equals: 0 }], [{
      op: "put",
      key: k,
      value: "v",
    }]);
  const results = await Promise.allSettled([key("/t/x"), key("/t/y")]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
});

Deno.test("txn batch: requests are capped by bytes too: 12 writes of 300 KB all commit (one 3.6 MB request would be refused whole)", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  const batcher = new TxnBatcher(client);
  const big = "x".repeat(300 * 1024);
  const results = await Promise.all(
    Array.from(
      { length: 12 },
      (_, i) =>
        batcher.run([{ key: `/t/big${i}`, target: "version", equals: 0 }], [{
          op: "put",
          key: `/t/big${i}`,
          value: big,
        }]),
    ),
  );
  assert.deepEqual(results.map((r) => r.ok), Array(12).fill(true));
  // 1 MiB per request: three of these per request at most, so several revisions.
  const revisions = new Set(results.map((r) => r.revision));
  assert.ok(revisions.size >= 4, `revisions: ${[...revisions]}`);
});

Deno.test("txn batch: a failed compare returns the current records of the keys asked for", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  await client.put("/t/held").value("theirs");
  const batcher = new TxnBatcher(client);
  const res = await batcher.run(
    [{ key: "/t/held", target: "version", equals: 0 }],
    [{ op: "put", key: "/t/held", value: "ours" }],
    ["/t/held", "/t/absent"],
  );
  assert.equal(res.ok, false);
  assert.equal(res.reads?.[0].kv?.value, "theirs");
  assert.deepEqual(res.reads?.[1], {
    key: "/t/absent",
    revision: res.revision,
    kv: null,
  });
});

Deno.test("txn batch: 128 claims of one turn all commit (etcd counts nested ops against the request's 128)", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  const batcher = new TxnBatcher(client);
  // A claim's shape: two compares, two puts, two keys read back on failure.
  const claim = (i: number) =>
    batcher.run(
      [
        { key: `/t/q/${i}`, target: "version", equals: 0 },
        { key: `/t/c/${i}`, target: "version", equals: 0 },
      ],
      [
        { op: "put", key: `/t/q/${i}`, value: "CLAIMED" },
        { op: "put", key: `/t/c/${i}`, value: "node-a" },
      ],
      [`/t/q/${i}`, `/t/c/${i}`],
    );
  const results = await Promise.all(
    Array.from({ length: 128 }, (_, i) => claim(i)),
  );
  assert.deepEqual(results.map((r) => r.ok), Array(128).fill(true));
  // 126 fit one request (126 + 2 ≤ 128), the other two the next.
  const revisions = new Set(results.map((r) => r.revision));
  assert.equal(revisions.size, 2, `revisions: ${[...revisions]}`);
});
