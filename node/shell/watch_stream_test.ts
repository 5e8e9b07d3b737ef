/**
 * The node's own Watch stream against a real etcd: it delivers what the
 * library's decoder reads (leases with all 63 bits, deletes, non-ASCII
 * values), refuses a compacted start, resumes across an etcd restart without
 * losing or repeating a change, and reports a cancel by etcd.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startEtcd, waitFor } from "../../tests/harness/mod.ts";
import { notYet } from "../../tests/harness/wait.ts";
import { connectEtcd } from "../etcd_client.ts";
import type { KeyChange } from "../core/events.ts";
import { listPrefix, toChange, watchPrefix } from "./etcd_io.ts";

const P = "/boi-ws/";

Deno.test("watch stream: every change as the library decodes it, in order", async () => {
  await using etcd = await startEtcd({ name: "ws-decode" });
  const client = connectEtcd([etcd.endpoint]);
  try {
    const from = (await listPrefix(client, P)).revision + 1;
    const seen: KeyChange[] = [];
    const errors: Error[] = [];
    const w = await watchPrefix(
      client,
      P,
      from,
      (cs) => seen.push(...cs),
      (e) => errors.push(e),
    );
    const lease = client.lease(30, { autoKeepAlive: false });
    const id = await lease.grant();
    await lease.put(`${P}claims/a`).value('{"node_id":"n-1"}');
    await client.put(`${P}dispatch-queue/b`).value("é ✓ \u{1F600}");
    await client.put(`${P}dispatch-queue/b`).value("");
    await client.delete().key(`${P}claims/a`);
    await client.put(`${P}other`).value("x".repeat(70_000));
    await waitFor(
      "5 changes",
      () => seen.length >= 5 || notYet(`${seen.length} changes`),
    );
    await w.cancel();
    // What the library reads back for the same keys (the list's decoder).
    const res = await client.kv.range({
      key: Buffer.from(P),
      range_end: Buffer.from("/boi-ws0"),
    });
    const listed = new Map(
      res.kvs.map((kv) => [kv.key.toString(), toChange(kv, false)]),
    );
    assert.equal(seen.length, 5, JSON.stringify(seen));
    assert.deepEqual(seen[0].kv?.lease, id, "lease id, exact");
    assert.deepEqual(seen[0].kv?.value, '{"node_id":"n-1"}');
    assert.equal(seen[1].kv?.value, "é ✓ \u{1F600}");
    assert.deepEqual(seen[2], listed.get(`${P}dispatch-queue/b`));
    assert.equal(seen[3].key, `${P}claims/a`);
    assert.equal(seen[3].kv, null);
    assert.equal(seen[3].revision, seen[2].revision + 1);
    assert.deepEqual(seen[4], listed.get(`${P}other`));
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i].revision > seen[i - 1].revision);
    }
    assert.deepEqual(errors, []);
    await lease.revoke();
  } finally {
    client.close();
  }
});

Deno.test("watch stream: a compacted start revision is refused, not skipped", async () => {
  await using etcd = await startEtcd({ name: "ws-compact" });
  const client = connectEtcd([etcd.endpoint]);
  try {
    await client.put(`${P}a`).value("1");
    const old = (await listPrefix(client, P)).revision;
    await client.put(`${P}a`).value("2");
    await client.put(`${P}a`).value("3");
    await etcd.compact();
    // etcd 3.4 creates the watch, then cancels it with the compact revision.
    const seen: KeyChange[] = [];
    const err = Promise.withResolvers<Error>();
    const w = await watchPrefix(
      client,
      P,
      old,
      (cs) => seen.push(...cs),
      (e) => err.resolve(e),
    ).catch((e: Error) => (err.resolve(e), null));
    const e = await err.promise;
    assert.match(e.message, /compacted/);
    assert.deepEqual(seen, []);
    await w?.cancel();
  } finally {
    client.close();
  }
});

Deno.test("watch stream: resumes across an etcd restart with no change lost or repeated", async () => {
  await using etcd = await startEtcd({ name: "ws-restart" });
  const client = connectEtcd([etcd.endpoint]);
  try {
    const from = (await listPrefix(client, P)).revision + 1;
    const seen: string[] = [];
    const errors: Error[] = [];
    const w = await watchPrefix(
      client,
      P,
      from,
      (cs) => seen.push(...cs.map((c) => c.kv?.value ?? "")),
      (e) => errors.push(e),
    );
    await client.put(`${P}k`).value("1");
    await waitFor("1 change", () => seen.length >= 1 || notYet(seen));
    await etcd.restart();
    // The writer is the test's own client: the node's client must find etcd again by itself.
    const writer = etcd.client();
    for (const v of ["2", "3", "4"]) await writer.put(`${P}k`).value(v);
    await waitFor(
      "4 changes after the restart",
      () => seen.length >= 4 || notYet(seen),
      { timeoutMs: 20_000 },
    );
    await new Promise((r) => setTimeout(r, 300));
    await w.cancel();
    assert.deepEqual(seen, ["1", "2", "3", "4"]);
    assert.deepEqual(errors, []);
  } finally {
    client.close();
  }
});

Deno.test("watch stream: cancel stops delivery", async () => {
  await using etcd = await startEtcd({ name: "ws-cancel" });
  const client = connectEtcd([etcd.endpoint]);
  try {
    const from = (await listPrefix(client, P)).revision + 1;
    const seen: KeyChange[] = [];
    const w = await watchPrefix(
      client,
      P,
      from,
      (cs) => seen.push(...cs),
      () => {},
    );
    await client.put(`${P}a`).value("1");
    await waitFor("1 change", () => seen.length >= 1 || notYet(seen.length));
    await w.cancel();
    await client.put(`${P}a`).value("2");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen.length, 1);
  } finally {
    client.close();
  }
});
