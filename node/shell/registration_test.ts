import assert from "node:assert/strict";
import { startEtcd } from "../../tests/harness/mod.ts";
import { connectEtcd } from "../etcd_client.ts";
import { EtcdNoAnswerError } from "../etcd_errors.ts";
import type { CapsRecord } from "../schema.ts";
import { testRegistration } from "./registration_test_util.ts";

const CAPS: CapsRecord = {
  static: { os: "linux" },
  dynamic: { workers_busy: 0, workers_max: 1, health: "ok" },
};

Deno.test("registration: an attempt that got no answer after its lease was granted gives that lease back", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  let calls = 0;
  let registeredAt = 0;
  const reg = testRegistration({
    client,
    node_id: "reg-a",
    // The first attempt fails as an unanswered write would, after the grant.
    caps: () => {
      if (calls++ === 0) throw new EtcdNoAnswerError("a registration", 5000);
      return CAPS;
    },
    onRegistered: (revision) => registeredAt = revision,
  });
  try {
    await reg.register();
    assert.ok(registeredAt > 0, "not registered");
    const { leases } = await client.leaseClient.leaseLeases({});
    const node = (await client.get("/boi/nodes/reg-a").exec()).kvs[0];
    // Only the lease the record is bound to: the failed attempt's one is
    // revoked, not kept alive by a keeper nobody holds.
    assert.deepEqual(leases.map((l) => String(l.ID)), [String(node.lease)]);
  } finally {
    await reg.revoke();
    client.close();
  }
});
