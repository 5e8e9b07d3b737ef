import assert from "node:assert/strict";
import { startEtcd } from "../../tests/harness/mod.ts";
import { connectEtcd } from "../etcd_client.ts";
import { EtcdNoAnswerError } from "../etcd_errors.ts";
import { Keys } from "../keys.ts";
import type { CapsRecord } from "../schema.ts";
import { EtcdHealth } from "./etcd_health.ts";
import { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { Registration } from "./registration.ts";

const CAPS: CapsRecord = {
  static: { os: "linux" },
  dynamic: { workers_busy: 0, workers_max: 1, health: "ok" },
};

Deno.test("registration: an attempt that got no answer after its lease was granted gives that lease back", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  const log = new Logger({}, "error");
  let calls = 0;
  let registeredAt = 0;
  const reg = new Registration({
    client,
    keys: new Keys("/boi/"),
    node_id: "reg-a",
    lease_ttl_s: 10,
    addr: "127.0.0.1:1",
    startedAt: Date.now(),
    log,
    health: new EtcdHealth(log, new Metrics(), 1000, () => {}),
    push: () => {},
    // The first attempt fails as an unanswered write would, after the grant.
    caps: () => {
      if (calls++ === 0) throw new EtcdNoAnswerError("a registration", 5000);
      return CAPS;
    },
    onRegistered: (revision) => registeredAt = revision,
    stopping: () => false,
    fatal: (err) => assert.fail(`fatal: ${err.message}`),
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
