/**
 * Hand-written records in etcd (SPEC §2: a record that fails validation is
 * logged and skipped, never crashes a loop; §6: bad input gets a clear
 * one-line error). A record the view cannot use must not leave a stale
 * version behind it: decisions from that version fail their compare, and the
 * failed compare's read-back (skipped again) must not re-issue the same write.
 */
import assert from "node:assert/strict";
import { applyEvent } from "./apply.ts";
import type { KeyChange } from "./events.ts";
import {
  cluster,
  envelope,
  feed,
  keys,
  nextRev,
  put,
  step,
  txns,
} from "./handlers_test_util.ts";
import type { TxnEffect } from "./effects.ts";

const ONE = ["node-a"];

/** A change writing `value` (raw text) at a fresh revision. */
function raw(key: string, value: string, lease = "0"): KeyChange {
  const rev = nextRev();
  return {
    key,
    revision: rev,
    kv: { value, mod_revision: rev, create_revision: rev, lease },
  };
}

/** The failed compare of `t`, with `reads` as the keys' current records. */
function failed(
  at: number,
  t: TxnEffect,
  reads: KeyChange[],
) {
  return {
    type: "txn_done" as const,
    at,
    effect: t,
    ok: false,
    revision: nextRev(),
    error: null,
    reads,
  };
}

Deno.test("an envelope under another task's key is skipped with a warning naming key, field, value and the expected value; no claim is ever sent", () => {
  const v = cluster("node-a", ONE);
  const change = put(keys.task("s1.x"), envelope("t1"));
  const warnings = applyEvent(v, keys, { type: "changes", at: 0, changes: [] });
  assert.deepEqual(warnings, []);
  const effects = step(v, { type: "changes", at: 1000, changes: [change] });
  assert.deepEqual(txns(effects), []);
  assert.equal(v.tasks.has("s1.x"), false);
  assert.deepEqual(
    applyEvent(v, keys, {
      type: "changes",
      at: 1001,
      changes: [put(keys.task("s1.y"), envelope("t1"))],
    }),
    [
      `${
        keys.task("s1.y")
      }: invalid record skipped: task_id must be "s1.y", the id in its key: got "s1.t1"`,
    ],
  );
  for (let at = 2000; at < 5000; at += 1000) {
    assert.deepEqual(txns(step(v, { type: "tick", at })), []);
  }
});

Deno.test("an envelope whose spec_id is not its task id's spec, a node or spec record under another id: each skipped with the field, the value and what its key says", () => {
  const v = cluster("node-a", ONE);
  const warnings = applyEvent(v, keys, {
    type: "changes",
    at: 0,
    changes: [
      put(keys.task("s1.t1"), envelope("t1", { spec_id: "s2" })),
      put(keys.node("ghost"), {
        node_id: "node-b",
        addr: "x:1",
        version: "0",
        started_at: 0,
        pid: 1,
      }, "9"),
      put(keys.spec("s3"), {
        spec_id: "s1",
        yaml: "",
        sha256: "x",
        dispatched_by: "t",
        dispatched_at: 0,
        task_ids: [],
      }),
    ],
  });
  assert.deepEqual(warnings, [
    `${
      keys.task("s1.t1")
    }: invalid record skipped: spec_id must be "s1", the spec of its task id: got "s2"`,
    `${
      keys.node("ghost")
    }: invalid record skipped: node_id must be "ghost", the id in its key: got "node-b"`,
    `${
      keys.spec("s3")
    }: invalid record skipped: spec_id must be "s3", the id in its key: got "s1"`,
  ]);
  assert.equal(v.tasks.has("s1.t1"), false);
  assert.equal(v.nodes.has("ghost"), false);
  assert.equal(v.specs.has("s3"), false);
});

Deno.test("an envelope overwritten by an invalid record leaves the view: the failed claim's read-back does not send the same claim again", () => {
  const v = cluster("node-a", ONE);
  const [claim] = txns(feed(v, 1000, put(keys.task("s1.t1"), envelope("t1"))));
  assert.equal(claim?.reason, "claim");
  // `etcdctl put /boi/dispatch-queue/s1.t1 '{"x":1}'` landed before the claim.
  const garbage = raw(keys.task("s1.t1"), '{"x":1}');
  const after = step(
    v,
    failed(1001, claim, [garbage, {
      key: keys.claim("s1.t1"),
      revision: garbage.revision,
      kv: null,
    }]),
  );
  assert.deepEqual(txns(after), []);
  assert.equal(v.tasks.has("s1.t1"), false);
  assert.deepEqual([...v.pending], []);
  assert.deepEqual(txns(step(v, { type: "tick", at: 5000 })), []);
  // The watch delivering the same garbage changes nothing; a valid record
  // written over it is decided again.
  assert.deepEqual(txns(feed(v, 5001, garbage)), []);
  const fixed = txns(feed(v, 5002, put(keys.task("s1.t1"), envelope("t1"))));
  assert.equal(fixed[0]?.reason, "claim");
});

Deno.test("a claim overwritten by an invalid record stays a claim (its key exists): a claim no live node holds, removed by the monitor, not a re-queue that can never commit", () => {
  const v = cluster("node-a", ["node-a", "node-b"]); // node-a monitors s1.t1
  feed(
    v,
    1000,
    put(
      keys.task("s1.t1"),
      envelope("t1", {
        state: "CLAIMED",
        claimant_node_id: "node-b",
        claim_lease_id: "9",
        attempts: 1,
      }),
    ),
    put(keys.claim("s1.t1"), {
      node_id: "node-b",
      lease_id: "9",
      claimed_at: 1000,
      attempt: 1,
    }, "9"),
  );
  assert.equal(v.claims.has("s1.t1"), true);
  const bad = raw(keys.claim("s1.t1"), "not json");
  const effects = txns(feed(v, 2000, bad));
  assert.deepEqual(effects.map((t) => t.reason), ["stray_claim"]);
  assert.deepEqual(effects[0].compare[1], {
    key: keys.claim("s1.t1"),
    target: "mod",
    equals: bad.revision,
  });
});

Deno.test("a BLOCKED task whose dependency is missing from a committed spec (deleted or garbled by hand) says so once on its envelope, and runs once the dependency is back and DONE", () => {
  const v = cluster("node-a", ONE);
  // The spec record lists both tasks, as a dispatch writes it.
  feed(
    v,
    0,
    put(keys.spec("s1"), {
      spec_id: "s1",
      yaml: "",
      sha256: "x",
      dispatched_by: "t",
      dispatched_at: 0,
      task_ids: ["s1.gone", "s1.t1"],
    }),
  );
  const blocked = envelope("t1", {
    state: "BLOCKED",
    depends_on: ["s1.gone"],
  });
  const first = txns(feed(v, 1000, put(keys.task("s1.t1"), blocked)));
  assert.deepEqual(first.map((t) => t.reason), ["note"]);
  assert.deepEqual(first[0].compare, [
    {
      key: keys.task("s1.t1"),
      target: "mod",
      equals: v.tasks.get("s1.t1")!.mod_revision,
    },
    { key: keys.claim("s1.t1"), target: "version", equals: 0 },
  ]);
  const noted = JSON.parse(
    first[0].success[0].op === "put" ? first[0].success[0].value : "",
  );
  assert.equal(noted.state, "BLOCKED");
  assert.equal(noted.state_version, 1);
  assert.equal(noted.last_error, "dependency s1.gone missing");
  step(v, {
    type: "txn_done",
    at: 1001,
    effect: first[0],
    ok: true,
    revision: nextRev(),
    error: null,
  });
  // Once: the sweep does not write it again.
  assert.deepEqual(txns(step(v, { type: "tick", at: 5000 })), []);
  const back = txns(
    feed(
      v,
      6000,
      put(keys.task("s1.gone"), envelope("gone", { state: "DONE" })),
    ),
  );
  assert.deepEqual(back.map((t) => t.reason), ["unblock"]);
  const next = JSON.parse(
    back[0].success[0].op === "put" ? back[0].success[0].value : "",
  );
  assert.equal(next.state, "PENDING");
  assert.equal(next.last_error, null);
});
