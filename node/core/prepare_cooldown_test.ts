/**
 * A node whose workspace Prepares keep failing (a full disk: ENOSPC at once)
 * used to be a black hole: each claim failed in milliseconds as a lost
 * attempt, the node was free again and claimed the next task, and only
 * expired claims counted toward the cooldown.
 */
import assert from "node:assert/strict";
import { applyEffects } from "./apply.ts";
import { selfHealth } from "./filter.ts";
import type { Effect } from "./effects.ts";
import type { MutableView } from "./view.ts";
import {
  cluster,
  envelope,
  feed,
  keys,
  put,
  step,
  T1,
  txns,
} from "./handlers_test_util.ts";

/** A claimed worker of `task` whose Prepare was sent: as after a won claim. */
function preparing(v: MutableView, at: number, task: string): void {
  applyEffects(v, [{
    kind: "prepare",
    task_id: task,
    fence: 7,
    lease: "L1",
    attempt: 1,
    envelope: envelope(task),
  }], at);
}

function prepareFails(v: MutableView, at: number, task: string): Effect[] {
  preparing(v, at, task);
  return step(v, {
    type: "worker_exit",
    at,
    task_id: task,
    fence: 7,
    code: null,
    signal: null,
    error: "No space left on device (os error 28)",
    lost: true,
  });
}

Deno.test("prepare cooldown: 3 Prepares failed in a row degrade the node; it claims nothing until the cooldown passes", () => {
  const v = cluster("node-a", ["node-a"]);
  prepareFails(v, 1000, "x1");
  prepareFails(v, 1100, "x2");
  assert.equal(selfHealth(v, 1200), "ok", "two failures: not yet");
  prepareFails(v, 1200, "x3");
  assert.equal(selfHealth(v, 1201), "degraded");
  const claims = txns(feed(v, 1300, put(keys.task(T1), envelope("t1"))))
    .filter((e) => e.reason === "claim");
  assert.deepEqual(claims, [], "degraded: no claim");
  const announced = step(v, { type: "tick", at: 1400 }).filter((e) =>
    e.kind === "emit"
  );
  assert.deepEqual(
    announced.map((e) => e.kind === "emit" && [e.event, e.payload.reason]),
    [["node.degraded", "workspace Prepare failing"]],
  );
  assert.equal(selfHealth(v, 1200 + 300_000), "ok", "heals after 5 min");
  // One more failure after the cooldown: degraded again at once.
  prepareFails(v, 1200 + 300_001, "x4");
  assert.equal(selfHealth(v, 1200 + 300_002), "degraded");
});

Deno.test("prepare cooldown: a Prepare that succeeds clears the count; an aborted one does not count", () => {
  const v = cluster("node-a", ["node-a"]);
  prepareFails(v, 1000, "x1");
  prepareFails(v, 1100, "x2");
  preparing(v, 1150, "ok1");
  step(v, {
    type: "worker_prepared",
    at: 1160,
    task_id: "ok1",
    fence: 7,
    workdir: "/w",
    env: {},
  });
  prepareFails(v, 1200, "x3");
  assert.equal(selfHealth(v, 1201), "ok", "not three in a row");
  // A Prepare the node itself cut (its stop, a cancel) is not the node's failure.
  preparing(v, 1300, "x4");
  applyEffects(v, [{
    kind: "abort",
    task_id: "x4",
    fence: 7,
    workdir: "",
    reason: "node stopping",
  }], 1300);
  step(v, {
    type: "worker_exit",
    at: 1310,
    task_id: "x4",
    fence: 7,
    code: null,
    signal: null,
    error: "aborted",
    lost: true,
  });
  prepareFails(v, 1400, "x5");
  assert.deepEqual(v.prepare_failures.map((f) => f.at), [1200, 1400]);
  assert.equal(selfHealth(v, 1401), "ok");
});

Deno.test("prepare cooldown: one task whose Prepare always fails (its own fault) does not degrade the node", () => {
  const v = cluster("node-a", ["node-a"]);
  for (let i = 0; i < 5; i++) prepareFails(v, 1000 + i * 100, "poison");
  assert.equal(v.prepare_failures.length, 1);
  assert.equal(selfHealth(v, 1500), "ok");
  prepareFails(v, 1600, "x1");
  prepareFails(v, 1700, "x2");
  assert.equal(selfHealth(v, 1701), "degraded", "three tasks in a row");
});

Deno.test("prepare cooldown: Prepares lost to a plugin crash do not count, before or after the crash is seen", () => {
  const v = cluster("node-a", ["node-a"]);
  // The workspace plugin is SIGKILLed: its Prepares in flight fail first.
  prepareFails(v, 1000, "x1");
  prepareFails(v, 1001, "x2");
  prepareFails(v, 1002, "x3");
  step(v, { type: "plugins_health", at: 1003, healthy: false });
  prepareFails(v, 1004, "x4");
  step(v, { type: "plugins_health", at: 2000, healthy: true });
  assert.deepEqual(v.prepare_failures, []);
  assert.equal(selfHealth(v, 2001), "ok", "the restarted plugin serves again");
});

/** Node-a's Prepare of T1 (attempt 1) fails by itself; T1 comes back PENDING, retry at 2000. */
function lostOnA(v: MutableView): void {
  applyEffects(v, [{
    kind: "prepare",
    task_id: T1,
    fence: 7,
    lease: "7",
    attempt: 1,
    envelope: envelope("t1", { state: "CLAIMED", attempts: 1 }),
  }], 1000);
  step(v, {
    type: "worker_exit",
    at: 1000,
    task_id: T1,
    fence: 7,
    code: null,
    signal: null,
    error: "No space left on device (os error 28)",
    lost: true,
  });
  feed(
    v,
    1010,
    put(keys.task(T1), envelope("t1", { attempts: 1, not_before: 2000 })),
  );
}

const claimsAt = (v: MutableView, at: number) =>
  txns(step(v, { type: "tick", at })).filter((e) => e.reason === "claim");

Deno.test("prepare cooldown: the retry of an attempt its own Prepare lost goes to another node first, not back to its HRW owner", () => {
  // node-a owns T1 by HRW. Claiming it again at `not_before` beat node-b's
  // spill-over (1 s) every time: with fewer than 3 tasks to fail, node-a
  // never degraded and T1 ended FAILED on it after 3 lost attempts.
  const v = cluster("node-a", ["node-a", "node-b"]);
  lostOnA(v);
  assert.equal(selfHealth(v, 2100), "ok", "one failure: not degraded");
  assert.deepEqual(claimsAt(v, 2100), [], "past not_before: node-b's turn");
  assert.deepEqual(claimsAt(v, 3000), [], "node-b's spill-over delay first");
  // Bounded: left to node-a once every other node had a spill delay.
  assert.equal(claimsAt(v, 3200).length, 1, "then node-a takes it");
});

Deno.test("prepare cooldown: alone, a node still retries the attempt its Prepare lost (a task failing everywhere reaches max_attempts)", () => {
  const v = cluster("node-a", ["node-a"]);
  lostOnA(v);
  assert.deepEqual(claimsAt(v, 2100), []);
  assert.equal(claimsAt(v, 3100).length, 1);
});
