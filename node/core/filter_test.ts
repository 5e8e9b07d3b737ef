import assert from "node:assert/strict";
import {
  cluster,
  envelope,
  feed,
  keys,
  NODES,
  put,
  txns,
} from "./handlers_test_util.ts";
import { hrwRank } from "./hrw.ts";
import { liveNodeCaps } from "./filter.ts";

const T = "s1.t1"; // ranks node-a, node-c, node-b

/** node-a's caps record as the admin path publishes it: `cluster_admin` added to its static caps. */
function adminCaps() {
  return put(keys.caps("node-a"), {
    static: { os: "linux", arch: "x86_64", cluster_admin: "true" },
    dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
  });
}

Deno.test('SPEC §5.1: a node granted cluster_admin matches `requires: {cluster_admin: "true"}` in its own view as in everyone else\'s, and claims the task', () => {
  assert.deepEqual(hrwRank(T, NODES), ["node-a", "node-c", "node-b"]);
  const req = { requires: { cluster_admin: "true" } };
  const claims: string[] = [];
  const marks: string[] = [];
  for (const self of NODES) {
    const v = cluster(self, NODES);
    feed(v, 0, adminCaps());
    const own = liveNodeCaps(v, 0).find((n) => n.node_id === "node-a")!;
    assert.equal(own.caps.cluster_admin, "true", `${self}'s view of node-a`);
    for (const t of txns(feed(v, 1, put(keys.task(T), envelope("t1", req))))) {
      if (t.reason === "claim") claims.push(self);
      if (t.reason === "unschedulable") marks.push(self);
    }
  }
  assert.deepEqual(claims, ["node-a"]);
  assert.deepEqual(marks, [], "nobody calls it unschedulable");
});

Deno.test("SPEC §5.1: a revoked grant (cluster_admin gone from the caps record) no longer matches on the node itself", () => {
  const v = cluster("node-a", ["node-a"]);
  feed(v, 0, adminCaps());
  feed(
    v,
    1,
    put(keys.caps("node-a"), {
      static: { os: "linux", arch: "x86_64" },
      dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
    }),
  );
  const req = { requires: { cluster_admin: "true" } };
  const t = txns(feed(v, 2, put(keys.task(T), envelope("t1", req))));
  assert.deepEqual(t.map((e) => e.reason), ["unschedulable"]);
});
