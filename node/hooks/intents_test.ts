import assert from "node:assert/strict";
import { startEtcd } from "../../tests/harness/mod.ts";
import { intentOutcome } from "./intents.ts";
import type { Intent } from "./wal_state.ts";

Deno.test("intent outcome: committed iff the key's first change after the compared revision wrote our value (real etcd)", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  const key = "/t/dispatch-queue/s.t1";
  await client.put(key).value("v0");
  const r0 = await etcd.revision();
  const intent = (value: string, after: number): Intent => ({
    id: 1,
    task_id: "s.t1",
    reason: "finish",
    key,
    value,
    after_rev: after,
    at_seq: 1,
  });
  // Nothing changed since the compare: it cannot have committed.
  assert.deepEqual(
    (await intentOutcome(client, intent("ours", r0))).committed_at,
    null,
  );
  // Ours landed, then someone else changed the key again: still committed, at its revision.
  await client.put(key).value("ours");
  const r1 = await etcd.revision();
  await client.put(key).value("later");
  const out = await intentOutcome(client, intent("ours", r0));
  assert.equal(out.committed_at, r1, out.how);
  // Someone else changed it first: ours lost its compare.
  const r2 = await etcd.revision();
  await client.put(key).value("theirs");
  await client.put(key).value("ours-too-late");
  assert.equal(
    (await intentOutcome(client, intent("ours-too-late", r2))).committed_at,
    null,
  );
});

Deno.test("intent outcome: history compacted past the compare: the current value tells if it is ours, else 'unknown' (real etcd)", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  const key = "/t/dispatch-queue/s.t2";
  await client.put(key).value("v0");
  const r0 = await etcd.revision();
  const intent = (value: string): Intent => ({
    id: 1,
    task_id: "s.t2",
    reason: "finish",
    key,
    value,
    after_rev: r0,
    at_seq: 1,
  });
  await client.put(key).value("ours");
  await client.put("/t/other").value("x");
  await client.kv.compact({ revision: String(await etcd.revision()) });
  const still = await intentOutcome(client, intent("ours"));
  assert.ok(still.committed_at !== null, still.how);
  assert.match(still.how, /compacted/);
  await client.put(key).value("later");
  await client.put("/t/other").value("y");
  await client.kv.compact({ revision: String(await etcd.revision()) });
  const lost = await intentOutcome(client, intent("ours"));
  assert.equal(lost.committed_at, null);
  assert.match(lost.how, /^unknown \(watch cancelled: .*compacted/, lost.how);
});
