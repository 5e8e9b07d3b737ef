/**
 * The view never goes back in time: a repeated watch change, a failed
 * transaction's reads answered after the watch moved on, and a re-list
 * older than the node's own acknowledged writes each used to bring back a
 * record since replaced or deleted (helper review, round 6).
 */
import assert from "node:assert/strict";
import type { KeyChange } from "./events.ts";
import {
  cluster,
  del,
  envelope,
  feed,
  keys,
  nextRev,
  NODES,
  put,
  step,
  T1,
  txns,
} from "./handlers_test_util.ts";

const ghost = { node_id: "ghost", lease_id: "0", claimed_at: 0, attempt: 1 };

Deno.test("view order: a watch change delivered a second time does not bring back a key deleted since", () => {
  const v = cluster("node-a", NODES);
  const claim = put(keys.claim(T1), ghost);
  feed(v, 0, put(keys.task(T1), envelope("t1")), claim);
  feed(v, 1, del(keys.claim(T1)));
  assert.equal(v.claims.has(T1), false);
  feed(v, 2, claim); // the same response again
  assert.equal(v.claims.has(T1), false, "the deleted claim came back");
});

Deno.test("view order: a failed claim's reads, answered after the watch moved past them, do not bring back the winner's deleted claim", () => {
  const v = cluster("node-a", NODES);
  const [mine] = txns(feed(v, 0, put(keys.task(T1), envelope("t1"))));
  assert.equal(mine?.reason, "claim");
  // node-x won at R; its attempt ended at R+1 (claim deleted, PENDING again).
  const theirs = put(keys.claim(T1), { ...ghost, node_id: "node-x" });
  const R = theirs.revision;
  feed(
    v,
    1,
    theirs,
    put(keys.task(T1), envelope("t1", { state: "CLAIMED", attempts: 1 })),
  );
  feed(
    v,
    2,
    del(keys.claim(T1)),
    put(keys.task(T1), envelope("t1", { state: "PENDING", attempts: 1 })),
  );
  // Only now our answer, with reads taken at R.
  const reads: KeyChange[] = [
    { ...theirs, revision: R },
  ];
  step(v, {
    type: "txn_done",
    at: 3,
    effect: mine,
    ok: false,
    revision: R,
    error: null,
    reads,
  });
  assert.equal(v.claims.has(T1), false, "the read at R put the claim back");
});

Deno.test("view order: a re-list older than our acknowledged claim keeps it: the running worker is not killed", () => {
  const v = cluster("node-a", NODES);
  const listedAt = nextRev(); // the list's revision: before our claim
  const [claim] = txns(feed(v, 0, put(keys.task(T1), envelope("t1"))));
  const fence = nextRev();
  step(v, {
    type: "txn_done",
    at: 1,
    effect: claim,
    ok: true,
    revision: fence,
    error: null,
  });
  step(v, {
    type: "worker_prepared",
    at: 1,
    task_id: T1,
    fence,
    workdir: "/w",
    env: {},
  });
  step(v, { type: "worker_started", at: 2, task_id: T1, fence, pid: 42 });
  // The list (paged over a while) at `listedAt`: the task PENDING, no claim.
  const kvs: KeyChange[] = [
    ...["node-a", "node-b", "node-c"].flatMap((n) => [
      {
        key: keys.node(n),
        revision: 1,
        kv: {
          value: JSON.stringify({
            node_id: n,
            addr: "x:1",
            version: "0",
            started_at: 0,
            pid: 1,
          }),
          mod_revision: 1,
          create_revision: 1,
          lease: n === "node-a" ? "7" : "9",
        },
      },
      {
        key: keys.caps(n),
        revision: 1,
        kv: {
          value: JSON.stringify({
            static: { os: "linux", arch: "x86_64" },
            dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
          }),
          mod_revision: 1,
          create_revision: 1,
          lease: n === "node-a" ? "7" : "9",
        },
      },
    ]),
    {
      key: keys.task(T1),
      revision: 2,
      kv: {
        value: JSON.stringify(envelope("t1")),
        mod_revision: 2,
        create_revision: 2,
        lease: "0",
      },
    },
  ];
  const effects = step(v, { type: "relist", at: 3, revision: listedAt, kvs });
  assert.equal(v.claims.get(T1)?.create_revision, fence, "our claim is gone");
  assert.deepEqual(
    effects.filter((e) => e.kind === "kill"),
    [],
    "the running worker was killed",
  );
});
