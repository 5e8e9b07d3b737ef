import assert from "node:assert/strict";
import {
  cluster,
  envelope,
  feed,
  keys,
  NODES,
  put,
  step,
  T1,
  txns,
} from "./handlers_test_util.ts";

Deno.test("no claim past the lease's known life (a thawed node): etcd would refuse it and fail the writes batched with it; a keepalive lets claims go on", () => {
  const v = cluster("node-a", NODES);
  v.lease_valid_until = 1_000;
  assert.deepEqual(
    txns(feed(v, 1_000, put(keys.task(T1), envelope("t1")))),
    [],
  );
  const renewed = step(v, {
    type: "lease_renewed",
    at: 1_001,
    lease_id: "7",
    valid_until: 11_001,
  });
  assert.deepEqual(txns(renewed), []);
  const tick = txns(step(v, { type: "tick", at: 1_002 }));
  assert.deepEqual(tick.map((e) => [e.reason, e.task_id]), [["claim", T1]]);
});
