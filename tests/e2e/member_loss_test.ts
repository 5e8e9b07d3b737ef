/**
 * KNOWN ISSUE (run it with BOI_KNOWN_BUGS=1): one follower of a healthy
 * 3-member etcd dies, and a node configured with all three endpoints.
 *
 * Seen before the fix: TTL 2 s: lease lost once in 20 s, /healthz 503 at 36
 * of 96 checks. The lease keeper now retries a keepalive within its round
 * (node/shell/lease.ts) and etcd counts as unreachable only after nothing
 * succeeded for max(1 s, TTL/2) (node/shell/node.ts `#markEtcd`): the lease
 * is no longer lost (0 of 1 run), but /healthz still answered 503 at 6 of 93
 * checks right after the kill, above this test's 5 % bar. Open.
 */
import assert from "node:assert/strict";
import {
  type EtcdMember,
  startEtcdCluster,
  startNode,
} from "../harness/mod.ts";
import { connectEtcd, deadline } from "../../node/etcd_client.ts";

async function follower(members: EtcdMember[]): Promise<EtcdMember> {
  for (const m of members) {
    const c = connectEtcd([m.endpoint], { failFast: true });
    try {
      const st = await c.maintenance.status(deadline(2000));
      if (st.leader !== "0" && st.leader !== st.header.member_id) return m;
    } finally {
      c.close();
    }
  }
  throw new Error("no follower found");
}

Deno.test({
  name:
    "one follower of a 3-member etcd dies: the node stays healthy and keeps its 2 s lease",
  ignore: Deno.env.get("BOI_KNOWN_BUGS") !== "1",
  fn: async () => {
    await using etcd = await startEtcdCluster();
    await using n = await startNode(etcd, { nodeId: "node-a", leaseTtlS: 2 });
    const dead = await follower(etcd.members);
    await dead.kill();
    const t0 = Date.now();
    let unhealthy = 0;
    let checks = 0;
    while (Date.now() - t0 < 10_000) {
      const r = await fetch(`${n.url}/healthz`);
      await r.body?.cancel();
      checks++;
      if (r.status !== 200) unhealthy++;
      await new Promise((r) => setTimeout(r, 100));
    }
    const lost = n.logs().filter((l) =>
      String(l.msg).startsWith("lease lost")
    ).length;
    console.log(
      `killed follower ${dead.name}: /healthz not 200 at ${unhealthy} of ${checks} checks; lease lost ${lost} times`,
    );
    assert.equal(lost, 0, "lease lost while a quorum served");
    assert.ok(unhealthy <= checks * 0.05, `${unhealthy} of ${checks} not 200`);
  },
});
