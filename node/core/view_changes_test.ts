import assert from "node:assert/strict";
import { applyEvent } from "./apply.ts";
import { cluster, envelope, keys, NODES, put } from "./handlers_test_util.ts";

Deno.test("a watch batch: a claim with its envelope in the same batch is no orphan, one without is warned about by key; pending and open follow the envelopes", () => {
  const v = cluster("node-a", NODES);
  const claim = (id: string) =>
    put(keys.claim(`s1.${id}`), {
      node_id: "node-b",
      lease_id: "9",
      claimed_at: 1,
      attempt: 1,
    }, "9");
  const warnings = applyEvent(v, keys, {
    type: "changes",
    at: 5,
    changes: [
      claim("t1"),
      put(keys.task("s1.t1"), envelope("t1", { state: "CLAIMED" })),
      put(keys.task("s1.t2"), envelope("t2")),
      claim("t9"),
    ],
  });
  assert.deepEqual(warnings, [
    `${keys.claim("s1.t9")}: claim for a task that does not exist`,
  ]);
  assert.deepEqual([...v.pending], ["s1.t2"]);
  assert.deepEqual([...v.open].sort(), ["s1.t1", "s1.t2"]);
  assert.equal(v.pending_since.get("s1.t2")?.at, 5);
  assert.equal(v.pending_since.has("s1.t1"), false);
});
