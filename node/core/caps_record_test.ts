import assert from "node:assert/strict";
import { capsRecord } from "./caps_record.ts";
import { cluster, del, feed, keys, NODES, put } from "./handlers_test_util.ts";

Deno.test("drain asked again right after an undrain: the caps record the node wants changes, so the CLI sees the new request taken", () => {
  const v = cluster("node-a", NODES);
  const drain = keys.drain("node-a");
  feed(v, 0, put(drain, { requested_at: 1, by: "cli" }));
  const first = capsRecord(v, 1, 0);
  assert.equal(first.dynamic.drain_state, "drained");
  // undrain, then drain again, before the node published anything between.
  feed(v, 2, del(drain), put(drain, { requested_at: 2, by: "cli" }));
  const again = capsRecord(v, 3, 0);
  assert.equal(again.dynamic.drain_state, "drained");
  assert.notDeepEqual(again, first, "the same record: never written again");
});
