import assert from "node:assert/strict";
import { startEtcd } from "../../tests/harness/mod.ts";
import { runTxn, runTxns } from "./etcd_io.ts";
import { decodeTxnReply, encodeTxn } from "./txn_codec.ts";

Deno.test("txn codec: a real etcd applies what it encodes: a leased put (63-bit id), UTF-8 values, a delete, every compare target", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  const lease = client.lease(30);
  const id = await lease.grant();
  assert.ok(BigInt(id) > 2n ** 53n, `lease id ${id} exercises the BigInt path`);
  await client.put("/t/gone").value("x");
  await client.put("/t/seen").value("1");
  const seen = (await client.get("/t/seen").exec()).kvs[0];
  const value = `{"last_error":"näive – 日本 😀","n":${"9".repeat(300)}}`;
  const r = await runTxn(client, [
    { key: "/t/new", target: "version", equals: 0 },
    { key: "/t/seen", target: "mod", equals: Number(seen.mod_revision) },
    { key: "/t/seen", target: "create", equals: Number(seen.create_revision) },
  ], [
    { op: "put", key: "/t/new", value, lease: id },
    // 50 UTF-16 units, 150 bytes: the length's varint outgrows its guess.
    { op: "put", key: "/t/cjk", value: "日".repeat(50) },
    { op: "delete", key: "/t/gone" },
  ]);
  assert.ok(r.ok);
  assert.equal(r.revision, await etcd.revision());
  const got = (await client.get("/t/new").exec()).kvs[0];
  assert.equal(got.value.toString(), value);
  assert.equal(String(got.lease), id);
  assert.equal(await client.get("/t/gone").string(), null);
  assert.equal(await client.get("/t/cjk").string(), "日".repeat(50));
  await lease.revoke();
});

Deno.test("txn codec: a failed compare reads the keys back (absent: a delete at the revision); nested transactions keep their own outcomes", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  await client.put("/t/taken").value("owner");
  const failed = await runTxn(
    client,
    [{ key: "/t/taken", target: "version", equals: 0 }],
    [{ op: "put", key: "/t/taken", value: "me" }],
    5000,
    ["/t/taken", "/t/absent"],
  );
  const revision = await etcd.revision();
  assert.equal(failed.ok, false);
  assert.equal(failed.revision, revision);
  assert.equal(failed.reads?.[0].kv?.value, "owner");
  assert.equal(failed.reads?.[0].kv?.mod_revision, failed.reads?.[0].revision);
  assert.deepEqual(failed.reads?.[1], {
    key: "/t/absent",
    revision,
    kv: null,
  });
  const out = await runTxns(client, [
    {
      compare: [{ key: "/t/a", target: "version", equals: 0 }],
      success: [{ op: "put", key: "/t/a", value: "1" }],
    },
    {
      compare: [{ key: "/t/taken", target: "version", equals: 0 }],
      success: [{ op: "put", key: "/t/taken", value: "me" }],
      readKeys: ["/t/taken"],
    },
  ]);
  assert.deepEqual(out.map((o) => o.ok), [true, false]);
  assert.equal(out[0].revision, revision + 1);
  assert.equal(out[1].reads?.[0].kv?.value, "owner");
  assert.equal(await client.get("/t/a").string(), "1");
});

Deno.test("txn codec: truncated reply bytes throw instead of decoding a partial answer", () => {
  // header{revision: 300}, succeeded: true, then a field cut short.
  const ok = Uint8Array.from([0x0a, 0x03, 0x18, 0xac, 0x02, 0x10, 0x01]);
  assert.deepEqual(decodeTxnReply(ok), {
    revision: 300,
    succeeded: true,
    responses: [],
  });
  assert.throws(() => decodeTxnReply(ok.subarray(0, 4)), /truncated/);
  assert.throws(
    () => decodeTxnReply(Uint8Array.from([0x1a, 0x05, 0x0a])),
    /truncated/,
  );
  // Nested lengths are their shortest varints (as protobuf writes them):
  // success op (field 2) of 5 bytes = delete_range (field 3) of 3 = key "k".
  const bytes = encodeTxn({
    compare: [],
    success: [{ op: "delete", key: "k" }],
  });
  assert.deepEqual([...bytes], [0x12, 0x05, 0x1a, 0x03, 0x0a, 0x01, 0x6b]);
});
