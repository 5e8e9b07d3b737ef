/** The harness's direct etcd reads: records validated, revisions kept. */
import assert from "node:assert/strict";
import type { Envelope } from "../../node/schema.ts";
import { testEnvelope } from "../../node/test_envelope.ts";
import {
  listEnvelopes,
  readClaim,
  readEnvelope,
  startEtcd,
  uniquePrefix,
} from "./mod.ts";

/** A PENDING envelope as a dispatch would store it now (state_version 1). */
function envelope(taskId: string, over: Partial<Envelope> = {}): Envelope {
  return testEnvelope(taskId, {
    state_version: 1,
    dispatched_at: Date.now(),
    ...over,
  });
}

Deno.test("store: reads validate records and keep their revisions", async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  const c = etcd.client();
  await c.put(`${prefix}dispatch-queue/s1.a`).value(
    JSON.stringify(envelope("s1.a")),
  );
  await c.put(`${prefix}dispatch-queue/s1.b`).value(
    JSON.stringify(envelope("s1.b", { state: "DONE" })),
  );
  await c.put(`${prefix}dispatch-queue/s2.a`).value(
    JSON.stringify(envelope("s2.a")),
  );
  const lease = c.lease(5, { autoKeepAlive: false });
  const leaseId = await lease.grant();
  const claimPut = await lease.put(`${prefix}claims/s1.a`).value(
    JSON.stringify({
      node_id: "n1",
      lease_id: leaseId,
      claimed_at: Date.now(),
      attempt: 1,
    }),
  ).exec();

  const a = await readEnvelope(etcd, "s1.a", prefix);
  assert.equal(a?.value.state, "PENDING");
  assert.ok(a!.mod_revision > 0);
  assert.equal(await readEnvelope(etcd, "s1.zz", prefix), null);
  assert.equal(
    await readEnvelope(etcd, "s1.a"),
    null,
    "default prefix is /boi/",
  );
  assert.deepEqual(
    (await listEnvelopes(etcd, { prefix, specId: "s1" })).map((e) =>
      `${e.value.task_id}:${e.value.state}`
    ),
    ["s1.a:PENDING", "s1.b:DONE"],
  );
  assert.equal((await listEnvelopes(etcd, { prefix })).length, 3);

  const claim = await readClaim(etcd, "s1.a", prefix);
  assert.equal(claim?.value.node_id, "n1");
  assert.equal(claim?.create_revision, Number(claimPut.header.revision));
  assert.equal(claim?.lease, leaseId);
  await lease.revoke();
  assert.equal(await readClaim(etcd, "s1.a", prefix), null);

  await c.put(`${prefix}dispatch-queue/s3.bad`).value('{"task_id":"s3.bad"}');
  await assert.rejects(
    readEnvelope(etcd, "s3.bad", prefix),
    new RegExp(`${prefix}dispatch-queue/s3.bad: value does not match`),
  );
});
