import assert from "node:assert/strict";
import type { Claim, Envelope } from "../schema.ts";
import { applyEffects, applyEvent } from "./apply.ts";
import type { KeyChange } from "./events.ts";
import type { EmitEffect } from "./effects.ts";
import {
  onLeaseExpired,
  onMembershipChange,
  onTaskQueued,
  onTick,
  onWorkerExit,
} from "./handlers.ts";
import { hrwRank } from "./hrw.ts";
import type { MutableView } from "./view.ts";
import { SWEEP_EVERY_MS } from "./apply.ts";
import {
  claimAndRun,
  cluster,
  del,
  envelope,
  feed,
  keys,
  lastRev,
  nextRev,
  NODES,
  put,
  runAndExit,
  step,
  T1,
  txns,
} from "./handlers_test_util.ts";

Deno.test("onTaskQueued: only the HRW winner claims at once, with claim and envelope in one txn", () => {
  assert.deepEqual(hrwRank(T1, NODES), ["node-a", "node-c", "node-b"]);
  for (const self of NODES) {
    const v = cluster(self, NODES);
    const effects = txns(feed(v, 1000, put(keys.task(T1), envelope("t1"))));
    if (self === "node-a") {
      assert.equal(effects.length, 1);
      const e = effects[0];
      assert.equal(e.reason, "claim");
      assert.deepEqual(e.compare, [
        { key: keys.task(T1), target: "mod", equals: lastRev() },
        { key: keys.claim(T1), target: "version", equals: 0 },
        { key: keys.dispatchPaused(), target: "version", equals: 0 },
      ]);
      assert.deepEqual(e.success.map((o) => [o.op, o.key]), [[
        "put",
        keys.claim(T1),
      ], ["put", keys.task(T1)]]);
      const claimOp = e.success[0];
      assert.equal(claimOp.op === "put" && claimOp.lease, "7");
      const next = JSON.parse(
        e.success[1].op === "put" ? e.success[1].value : "",
      );
      assert.equal(next.state, "CLAIMED");
      assert.equal(next.attempts, 1);
      assert.equal(next.claimant_node_id, "node-a");
    } else {
      assert.deepEqual(effects, [], self);
    }
  }
});

Deno.test("onTick: spill-over lets rank r claim after spill_after + (r-1)*step", () => {
  const c = cluster("node-c", NODES); // rank 1 for s1.t1
  assert.deepEqual(txns(feed(c, 1000, put(keys.task(T1), envelope("t1")))), []);
  assert.deepEqual(txns(onTick(c, keys, 1999)), []);
  assert.equal(txns(onTick(c, keys, 2000))[0]?.reason, "claim");
  const b = cluster("node-b", NODES); // rank 2
  feed(b, 1000, put(keys.task(T1), envelope("t1")));
  assert.deepEqual(txns(onTick(b, keys, 2099)), []);
  assert.equal(txns(onTick(b, keys, 2100))[0]?.reason, "claim");
});

Deno.test("capability filter: only the node with the cap claims; others never spill", () => {
  const caps = { "node-b": { "x-test-gpu": "yes" } };
  const req = { requires: { "x-test-gpu": "yes" } };
  for (const self of NODES) {
    const v = cluster(self, NODES, caps);
    const first = txns(feed(v, 0, put(keys.task(T1), envelope("t1", req))));
    const later = txns(onTick(v, keys, 60_000));
    const claims = [...first, ...later].filter((e) => e.reason === "claim");
    assert.equal(claims.length, self === "node-b" ? 1 : 0, self);
  }
});

Deno.test("no capable node: the monitor marks the task once and emits task.unschedulable once", () => {
  const a = cluster("node-a", NODES); // monitor of s1.t1
  const effects = feed(
    a,
    0,
    put(keys.task(T1), envelope("t1", { requires: { "x-test-gpu": "yes" } })),
  );
  const t = txns(effects);
  assert.equal(t.length, 1);
  assert.equal(t[0].reason, "unschedulable");
  assert.match(
    t[0].success[0].op === "put" ? t[0].success[0].value : "",
    /"last_error":"no capable node"/,
  );
  assert.equal(
    effects.filter((e) => e.kind === "emit" && e.event === "task.unschedulable")
      .length,
    1,
  );
  applyEvent(a, keys, {
    type: "txn_done",
    at: 1,
    effect: t[0],
    ok: true,
    revision: nextRev(),
    error: null,
  });
  const again = onTick(a, keys, 5000);
  assert.deepEqual(again, []);
  // Deleted (its spec removed): forgotten, not kept for ever.
  feed(a, 6000, del(keys.task(T1)));
  assert.equal(a.unschedulable_reported.size, 0);
  // Back, claimed by hand and re-queued: unschedulable again, reported again.
  const gpu = { requires: { "x-test-gpu": "yes" } };
  // (The monitor's requeue of a claim-less CLAIMED task: its write lost here.)
  for (
    const e of txns(feed(
      a,
      7000,
      put(keys.task(T1), envelope("t1", { ...gpu, state: "CLAIMED" })),
    ))
  ) {
    applyEvent(a, keys, {
      type: "txn_done",
      at: 7001,
      effect: e,
      ok: false,
      revision: 0,
      error: null,
    });
  }
  const back = feed(a, 8000, put(keys.task(T1), envelope("t1", gpu)));
  assert.equal(
    back.filter((e) => e.kind === "emit" && e.event === "task.unschedulable")
      .length,
    1,
    "reported again after it left PENDING",
  );
  const c = cluster("node-c", NODES);
  assert.deepEqual(
    feed(
      c,
      0,
      put(keys.task(T1), envelope("t1", { requires: { "x-test-gpu": "yes" } })),
    ),
    [],
  );
});

Deno.test("onLeaseExpired: the monitor requeues a task whose claim vanished; FAILED when attempts are used up", () => {
  for (const [attempts, expected] of [[1, "PENDING"], [3, "FAILED"]] as const) {
    const a = cluster("node-a", NODES);
    const claimed = envelope("t1", {
      state: "RUNNING",
      attempts,
      claimant_node_id: "node-b",
      claim_lease_id: "9",
    });
    const claim: Claim = {
      node_id: "node-b",
      lease_id: "9",
      claimed_at: 0,
      attempt: attempts,
    };
    assert.deepEqual(
      txns(
        feed(
          a,
          0,
          put(keys.task(T1), claimed),
          put(keys.claim(T1), claim, "9"),
        ),
      ),
      [],
    );
    const t = txns(feed(a, 10, del(keys.claim(T1))));
    assert.equal(t.length, 1);
    assert.equal(t[0].reason, "requeue");
    assert.deepEqual(t[0].compare.map((c) => c.target), ["mod", "version"]);
    const next = JSON.parse(
      t[0].success[0].op === "put" ? t[0].success[0].value : "",
    );
    assert.equal(next.state, expected);
    assert.match(next.last_error, /lease expired on node-b/);
    assert.equal(next.claimant_node_id, null);
  }
  // Not the monitor: no write.
  const c = cluster("node-c", NODES);
  feed(
    c,
    0,
    put(keys.task(T1), envelope("t1", { state: "RUNNING", attempts: 1 })),
  );
  assert.deepEqual(txns(onLeaseExpired(c, keys, [T1], 10)), []);
});

Deno.test("a requeue after cancel_requested ends CANCELLED", () => {
  const a = cluster("node-a", NODES);
  const t = txns(
    feed(
      a,
      0,
      put(
        keys.task(T1),
        envelope("t1", {
          state: "RUNNING",
          attempts: 1,
          cancel_requested: true,
        }),
      ),
    ),
  );
  const next = JSON.parse((t[0].success[0] as { value: string }).value);
  assert.equal(next.state, "CANCELLED");
});

Deno.test("BLOCKED: unblocked when all deps are DONE, CANCELLED when one FAILED", () => {
  const dep = (state: Envelope["state"]) =>
    put(keys.task("s1.d"), envelope("d", { state }));
  const a = cluster("node-a", NODES);
  const a2 = cluster("node-a", NODES);
  const blocked = put(
    keys.task(T1),
    envelope("t1", { state: "BLOCKED", depends_on: ["s1.d"] }),
  );
  assert.deepEqual(
    txns(feed(a, 0, blocked, dep("RUNNING"))).filter((e) => e.task_id === T1),
    [],
  );
  const un = txns(feed(a, 1, dep("DONE"))).filter((e) => e.task_id === T1);
  assert.equal(un[0]?.reason, "unblock");
  feed(
    a2,
    0,
    put(
      keys.task(T1),
      envelope("t1", { state: "BLOCKED", depends_on: ["s1.d"] }),
    ),
  );
  const cx = txns(feed(a2, 1, dep("FAILED"))).filter((e) => e.task_id === T1);
  const next = JSON.parse((cx[0].success[0] as { value: string }).value);
  assert.equal(next.state, "CANCELLED");
  assert.equal(next.last_error, "dependency s1.d FAILED");
});

Deno.test("onWorkerExit: the result is written under the fence and the claim deleted", () => {
  const { fence, fin } = runAndExit();
  assert.equal(fin.reason, "finish");
  assert.deepEqual(fin.compare[0], {
    key: keys.claim(T1),
    target: "create",
    equals: fence,
  });
  assert.deepEqual(fin.success.map((o) => o.op), ["put", "delete"]);
  const next = JSON.parse((fin.success[0] as { value: string }).value);
  assert.equal(next.state, "DONE");
  assert.equal(next.ran_on, "node-a");
  assert.equal(next.fence, fence);
});

Deno.test("a finish whose answer was lost and whose retry found it applied ends the worker and emits task.completed once", () => {
  const { v, fin } = runAndExit();
  applyEffects(v, [fin], 10);
  const at = nextRev();
  // What the retry's failed compare reads back: the envelope as the finish
  // wrote it, the claim gone.
  const reads: KeyChange[] = fin.success.map((op) => ({
    key: op.key,
    revision: at + 1,
    kv: op.op === "put"
      ? { value: op.value, mod_revision: at, create_revision: 1, lease: "0" }
      : null,
  }));
  const effects = step(v, {
    type: "txn_done",
    at: 11,
    effect: fin,
    ok: false,
    revision: at + 1,
    error: null,
    reads,
  });
  const events = effects.filter((e) => e.kind === "emit").map((e) =>
    (e as EmitEffect).event
  );
  assert.deepEqual(events, ["task.completed"]);
  assert.equal(v.workers.has(T1), false, "the worker is retired");
  assert.deepEqual(
    txns(step(v, { type: "tick", at: 12 })),
    [],
    "nothing re-sent",
  );
});

Deno.test("a worker that ends before its RUNNING write is due goes CLAIMED→DONE in one write, under the same compares", () => {
  const v = cluster("node-a", NODES);
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
  const claimedRev = v.tasks.get(T1)!.mod_revision;
  step(v, {
    type: "worker_prepared",
    at: 1,
    task_id: T1,
    fence,
    workdir: "/w",
    env: {},
  });
  const started = step(v, {
    type: "worker_started",
    at: 2,
    task_id: T1,
    fence,
    pid: 42,
  });
  assert.deepEqual(txns(started), []);
  const exit = txns(step(v, {
    type: "worker_exit",
    at: 5,
    task_id: T1,
    fence,
    code: 0,
    signal: null,
    error: null,
    lost: false,
  }));
  assert.equal(exit.length, 1);
  const [fin] = exit;
  assert.equal(fin.reason, "finish");
  // SPEC §4: the fence and the envelope revision it was decided from (CLAIMED).
  assert.deepEqual(fin.compare, [
    { key: keys.claim(T1), target: "create", equals: fence },
    { key: keys.task(T1), target: "mod", equals: claimedRev },
  ]);
  assert.deepEqual(fin.success.map((o) => [o.op, o.key]), [
    ["put", keys.task(T1)],
    ["delete", keys.claim(T1)],
  ]);
  const next = JSON.parse((fin.success[0] as { value: string }).value);
  assert.equal(next.state, "DONE");
  assert.equal(next.started_at, 2);
  assert.equal(next.finished_at, 5);
  assert.equal(next.fence, fence);
  assert.equal(next.ran_on, "node-a");
  // Nothing else is written for it, not even at the next tick.
  assert.deepEqual(txns(step(v, { type: "tick", at: 200 })), []);
  // Its hook events: it did start, so task.started, then task.completed,
  // both with started_at (docs/events.md).
  const done = step(v, {
    type: "txn_done",
    at: 6,
    effect: fin,
    ok: true,
    revision: nextRev(),
    error: null,
  });
  const emits = done.flatMap((e) =>
    e.kind === "emit"
      ? [[e.event, e.payload.started_at, e.payload.node_id]]
      : []
  );
  // Both name the node that ran it (the DONE envelope clears the claimant).
  assert.deepEqual(emits, [["task.started", 2, "node-a"], [
    "task.completed",
    2,
    "node-a",
  ]]);
});

Deno.test("onWorkerExit: non-zero exit with retries left goes back to PENDING with backoff", () => {
  const { v, fence } = claimAndRun(2);
  applyEvent(v, keys, {
    type: "worker_exit",
    at: 10,
    task_id: T1,
    fence,
    code: 3,
    signal: null,
    error: null,
    lost: false,
  });
  const next = JSON.parse(
    (txns(onWorkerExit(v, keys, T1, 10))[0].success[0] as { value: string })
      .value,
  );
  assert.equal(next.state, "PENDING");
  assert.equal(next.retries_left, 1);
  assert.equal(next.not_before, 1010);
  assert.equal(next.exit_code, 3);
});

Deno.test("a late result whose claim was taken over is refused, never written", () => {
  const { v, fence } = claimAndRun();
  // Lease expired; another node re-claimed: new claim with a new create revision.
  const kill = feed(v, 5, del(keys.claim(T1))).filter((e) => e.kind === "kill");
  assert.equal(kill.length, 1, "the worker of a lost claim is killed");
  assert.deepEqual(
    onTick(v, keys, 6).filter((e) => e.kind === "kill"),
    [],
    "killed once",
  );
  // A Kill the pool did not take is decided again: the worker may run on.
  const again = step(v, { type: "kill_failed", at: 6, task_id: T1, fence });
  assert.deepEqual(again.filter((e) => e.kind === "kill").length, 1);
  assert.deepEqual(
    onTick(v, keys, 6).filter((e) => e.kind === "kill"),
    [],
    "killed once more, not on every tick",
  );
  feed(
    v,
    7,
    put(keys.claim(T1), {
      node_id: "node-c",
      lease_id: "9",
      claimed_at: 7,
      attempt: 2,
    }, "9"),
  );
  applyEvent(v, keys, {
    type: "worker_exit",
    at: 8,
    task_id: T1,
    fence,
    code: 0,
    signal: null,
    error: null,
    lost: false,
  });
  const effects = onWorkerExit(v, keys, T1, 8);
  assert.deepEqual(txns(effects), []);
  assert.ok(
    effects.some((e) =>
      e.kind === "log" && e.msg === "result refused by fence"
    ),
  );
  assert.ok(effects.some((e) => e.kind === "drop_worker"));
});

Deno.test("cancel_requested on a running task kills the worker, then commits CANCELLED", () => {
  const { v, fence } = claimAndRun();
  const env = v.tasks.get(T1)!.value;
  const effects = feed(
    v,
    5,
    put(keys.task(T1), {
      ...env,
      cancel_requested: true,
      state_version: env.state_version + 1,
    }),
  );
  assert.deepEqual(effects.map((e) => e.kind), ["kill"]);
  applyEvent(v, keys, {
    type: "worker_exit",
    at: 6,
    task_id: T1,
    fence,
    code: null,
    signal: "SIGTERM",
    error: null,
    lost: false,
  });
  const next = JSON.parse(
    (txns(onWorkerExit(v, keys, T1, 6))[0].success[0] as { value: string })
      .value,
  );
  assert.equal(next.state, "CANCELLED");
});

Deno.test("dispatch pause: nobody claims; lease lost: nobody claims", () => {
  const a = cluster("node-a", NODES);
  feed(a, 0, put(keys.dispatchPaused(), { paused_at: 0, by: "t" }));
  assert.deepEqual(txns(feed(a, 0, put(keys.task(T1), envelope("t1")))), []);
  const a2 = cluster("node-a", NODES);
  applyEvent(a2, keys, { type: "lease_lost", at: 0 });
  assert.deepEqual(txns(feed(a2, 0, put(keys.task(T1), envelope("t1")))), []);
});

Deno.test("capacity: a full node claims nothing more", () => {
  const v = cluster("node-a", ["node-a"]);
  const changes = Array.from(
    { length: 10 },
    (_, i) => put(keys.task(`s1.t${i}`), envelope(`t${i}`)),
  );
  const claims = txns(feed(v, 0, ...changes)).filter((e) =>
    e.reason === "claim"
  );
  assert.equal(claims.length, 4);
});

Deno.test("envelopes of an uncommitted spec (no spec record) are ignored", () => {
  const v = cluster("node-a", NODES);
  const e = envelope("t1", { spec_id: "s2", task_id: "s2.t1" });
  assert.deepEqual(feed(v, 0, put(keys.task("s2.t1"), e)), []);
  assert.deepEqual(onMembershipChange(v, keys, 1), []);
  assert.ok(onTaskQueued(v, keys, ["s2.t1"], 2).length === 0);
});

/** A worker of `lease` whose claim expired under it: one claim-failure incident per lease. */
function expire(
  v: MutableView,
  at: number,
  lease: string,
  task = `x-${lease}`,
): void {
  applyEffects(v, [{
    kind: "prepare",
    task_id: task,
    fence: 1,
    lease,
    attempt: 1,
    envelope: envelope("x"),
  }], at);
  applyEffects(v, [{
    kind: "drop_worker",
    task_id: task,
    fence: 1,
    expired: true,
  }], at);
}

Deno.test("claim-failure cooldown: 3 lost leases within the window degrade the node until the cooldown passes", () => {
  const v = cluster("node-a", ["node-a"]);
  expire(v, 1000, "L1");
  expire(v, 2000, "L2");
  expire(v, 3000, "L3");
  const first = txns(feed(v, 3001, put(keys.task(T1), envelope("t1"))));
  assert.deepEqual(
    first.filter((e) => e.reason === "claim"),
    [],
    "degraded: no claim",
  );
  // Degraded, it is not even capable: the task is marked unschedulable (write lost here).
  for (const e of first) {
    applyEvent(v, keys, {
      type: "txn_done",
      at: 3002,
      effect: e,
      ok: false,
      revision: 0,
      error: null,
    });
  }
  assert.equal(
    txns(onTick(v, keys, 3000 + 300_000))[0]?.reason,
    "claim",
    "healed after the cooldown",
  );
  const w = cluster("node-a", ["node-a"]);
  expire(w, 0, "L1");
  expire(w, 200_000, "L2");
  expire(w, 400_000, "L3");
  assert.equal(
    txns(feed(w, 400_001, put(keys.task(T1), envelope("t1"))))[0]?.reason,
    "claim",
    "spread out: no cooldown",
  );
});

Deno.test("claim-failure cooldown: many claims lost with one lease are one incident", () => {
  const v = cluster("node-a", ["node-a"]);
  for (let i = 0; i < 5; i++) expire(v, 1000 + i, "L1", `x${i}`);
  assert.equal(v.claim_expiries.length, 1);
  assert.equal(
    txns(feed(v, 2000, put(keys.task(T1), envelope("t1"))))[0]?.reason,
    "claim",
    "not degraded",
  );
});

Deno.test("drain: a draining node claims nothing; others stop treating it as a candidate", () => {
  const a = cluster("node-a", NODES);
  feed(a, 0, put(keys.drain("node-a"), { requested_at: 0 }));
  assert.deepEqual(txns(feed(a, 0, put(keys.task(T1), envelope("t1")))), []);
  assert.deepEqual(txns(onTick(a, keys, 60_000)), []);
  // node-c ranks second for s1.t1; with node-a draining it is first and claims at once.
  const c = cluster("node-c", NODES);
  feed(c, 0, put(keys.drain("node-a"), { requested_at: 0 }));
  assert.equal(
    txns(feed(c, 0, put(keys.task(T1), envelope("t1"))))[0]?.reason,
    "claim",
  );
});

Deno.test("a result parked in the pending flush is never run again while its claim lives", () => {
  const { v, fence } = claimAndRun();
  applyEvent(v, keys, {
    type: "worker_exit",
    at: 10,
    task_id: T1,
    fence,
    code: 0,
    signal: null,
    error: null,
    lost: false,
  });
  applyEvent(v, keys, { type: "result_flushed", at: 11, task_id: T1, fence });
  assert.equal(v.workers.size, 0);
  // Even with the envelope back at CLAIMED and our claim alive, nothing is spawned.
  const env = v.tasks.get(T1)!.value;
  const effects = feed(
    v,
    12,
    put(keys.task(T1), {
      ...env,
      state: "CLAIMED",
      state_version: env.state_version + 1,
    }),
  );
  assert.deepEqual(
    effects.filter((e) => e.kind === "spawn" || e.kind === "prepare"),
    [],
  );
});

Deno.test("capacity: an exited worker frees its slot at once: the next PENDING task is claimed beside its finish, not at the next tick", () => {
  const v = cluster("node-a", ["node-a"]);
  const changes = Array.from(
    { length: 10 },
    (_, i) => put(keys.task(`s1.t${i}`), envelope(`t${i}`)),
  );
  const claims = txns(feed(v, 0, ...changes));
  assert.equal(claims.length, 4);
  const first = claims[0];
  const fence = nextRev();
  const spawned = step(v, {
    type: "txn_done",
    at: 1,
    effect: first,
    ok: true,
    revision: fence,
    error: null,
  });
  assert.ok(spawned.some((e) => e.kind === "prepare"));
  // It ends before its RUNNING write is due: the finish is its only write.
  assert.deepEqual(
    txns(step(v, {
      type: "worker_started",
      at: 2,
      task_id: first.task_id,
      fence,
      pid: 1,
    })),
    [],
  );
  const [finish, next] = txns(step(v, {
    type: "worker_exit",
    at: 4,
    task_id: first.task_id,
    fence,
    code: 0,
    signal: null,
    error: null,
    lost: false,
  }));
  assert.equal(finish.reason, "finish");
  assert.equal(next?.reason, "claim");
  assert.ok(!claims.some((c) => c.task_id === next.task_id));
  // Full again: the committed finish claims nothing more.
  assert.deepEqual(
    txns(step(v, {
      type: "txn_done",
      at: 5,
      effect: finish,
      ok: true,
      revision: nextRev(),
      error: null,
    })),
    [],
  );
});

Deno.test("dependents: a finished task re-decides the tasks that name it, which are unblocked", () => {
  const v = cluster("node-a", ["node-a"]);
  // Neither dependency is visible yet: nothing to decide.
  assert.deepEqual(
    feed(
      v,
      0,
      put(
        keys.task("s1.b"),
        envelope("b", { state: "BLOCKED", depends_on: ["s1.a"] }),
      ),
      put(
        keys.task("s1.c"),
        envelope("c", { state: "BLOCKED", depends_on: ["s1.x"] }),
      ),
    ),
    [],
  );
  assert.deepEqual([...v.dependents.get("s1.a") ?? []], ["s1.b"]);
  const effects = txns(
    feed(v, 1, put(keys.task("s1.a"), envelope("a", { state: "DONE" }))),
  );
  assert.deepEqual(effects.map((e) => [e.reason, e.task_id]), [[
    "unblock",
    "s1.b",
  ]]);
});

Deno.test("spill-over waits while the node has PENDING work of its own: a free slot takes its own task, not the oldest stealable one", () => {
  // HRW over node-a..c: s1.t1 is node-a's (node-c second); t0, t2, t5, t6, t9 are node-c's.
  const v = cluster("node-c", NODES);
  const claims = txns(feed(
    v,
    1000,
    ...["t1", "t0", "t2", "t5", "t6", "t9"].map((id) =>
      put(keys.task(`s1.${id}`), envelope(id))
    ),
  ));
  assert.deepEqual(claims.map((c) => c.task_id), [
    "s1.t0",
    "s1.t2",
    "s1.t5",
    "s1.t6",
  ]);
  const fence = nextRev();
  step(v, {
    type: "txn_done",
    at: 1001,
    effect: claims[0],
    ok: true,
    revision: fence,
    error: null,
  });
  // s1.t1 has waited past the spill delay when the slot frees at 2500.
  const after = txns(step(v, {
    type: "worker_exit",
    at: 2500,
    task_id: "s1.t0",
    fence,
    code: 0,
    signal: null,
    error: null,
    lost: false,
  }));
  assert.deepEqual(after.map((e) => [e.reason, e.task_id]), [
    ["finish", "s1.t0"],
    ["claim", "s1.t9"],
  ]);
});

Deno.test("spill-over waits while the node's own claims fly: the owner takes the oldest tasks, a stealer with its own claims in flight does not race it", () => {
  // node-c: s1.t1 is node-a's (node-c second); t0 and t2 are node-c's own.
  const v = cluster("node-c", NODES);
  const own = txns(feed(
    v,
    1000,
    ...["t1", "t0", "t2"].map((id) => put(keys.task(`s1.${id}`), envelope(id))),
  ));
  assert.deepEqual(own.map((c) => c.task_id), ["s1.t0", "s1.t2"]);
  // s1.t1 has waited past the spill delay and two slots are free, but the
  // node's own claims are in flight: its own work is not done (measured:
  // skipping them made every node steal the oldest tasks mid-run, 1.02
  // failed claims per task over 5,000).
  assert.deepEqual(txns(onTick(v, keys, 2500)), []);
  for (const c of own) {
    step(v, {
      type: "txn_done",
      at: 2501,
      effect: c,
      ok: true,
      revision: nextRev(),
      error: null,
    });
  }
  // Its own share claimed, it takes the waiting task.
  assert.deepEqual(
    txns(onTick(v, keys, 2600)).map((e) => [e.reason, e.task_id]),
    [
      ["claim", "s1.t1"],
    ],
  );
});

Deno.test("finding 6: a late ack of our own claim does not re-insert a claim the watch already saw deleted", () => {
  const v = cluster("node-a", ["node-a"]);
  const [claim] = txns(feed(v, 0, put(keys.task(T1), envelope("t1"))));
  assert.equal(claim.reason, "claim");
  const at = nextRev();
  const claimPut = claim.success[0];
  const taskPut = claim.success[1];
  assert.ok(claimPut.op === "put" && taskPut.op === "put");
  // The watch delivers our own commit, then the lease expiry's delete...
  feed(v, 1, {
    key: claimPut.key,
    revision: at,
    kv: {
      value: claimPut.value,
      mod_revision: at,
      create_revision: at,
      lease: "7",
    },
  }, {
    key: taskPut.key,
    revision: at,
    kv: {
      value: taskPut.value,
      mod_revision: at,
      create_revision: at - 1,
      lease: "0",
    },
  });
  feed(v, 2, del(keys.claim(T1)));
  // ...and only then the transaction's answer.
  applyEvent(v, keys, {
    type: "txn_done",
    at: 3,
    effect: claim,
    ok: true,
    revision: at,
    error: null,
  });
  assert.equal(v.claims.has(T1), false);
});

Deno.test("finding 3: a compare that failed only because our transaction had already committed counts as committed", () => {
  const v = cluster("node-a", ["node-a"]);
  const [claim] = txns(feed(v, 0, put(keys.task(T1), envelope("t1"))));
  const at = nextRev();
  const reads: KeyChange[] = claim.success.map((op) => ({
    key: op.key,
    revision: at,
    kv: op.op === "put"
      ? {
        value: op.value,
        mod_revision: at,
        create_revision: at,
        lease: op.lease ?? "0",
      }
      : null,
  }));
  const effects = step(v, {
    type: "txn_done",
    at: 1,
    effect: claim,
    ok: false,
    revision: at + 1,
    error: null,
    reads,
  });
  // Retried on another endpoint: the claim is ours; the attempt goes on,
  // and the audit stream gets its task.claimed (fenced by the claim's
  // revision, not the failed compare's), once.
  assert.deepEqual(effects.map((e) => e.kind), ["emit", "prepare"]);
  const claimed = effects[0] as EmitEffect;
  assert.equal(claimed.event, "task.claimed");
  assert.equal(claimed.payload.fence, at);
  assert.equal(v.claims.get(T1)?.create_revision, at);
});

Deno.test("a claim sent before the node saw the dispatch pause fails its compare there, and the read-back stops claiming", () => {
  const v = cluster("node-a", ["node-a"]);
  const [claim] = txns(feed(v, 0, put(keys.task(T1), envelope("t1"))));
  const at = nextRev();
  const task = v.tasks.get(T1)!;
  // etcd's answer: the pause is set; the task and its claim are as they were.
  const reads: KeyChange[] = [
    {
      key: keys.task(T1),
      revision: at,
      kv: {
        value: JSON.stringify(task.value),
        mod_revision: task.mod_revision,
        create_revision: task.mod_revision,
        lease: "0",
      },
    },
    { key: keys.claim(T1), revision: at, kv: null },
    {
      key: keys.dispatchPaused(),
      revision: at,
      kv: {
        value: JSON.stringify({ paused_at: 1, by: "cli" }),
        mod_revision: at,
        create_revision: at,
        lease: "0",
      },
    },
  ];
  const effects = step(v, {
    type: "txn_done",
    at: 1,
    effect: claim,
    ok: false,
    revision: at,
    error: null,
    reads,
  });
  assert.equal(v.dispatch_paused, true);
  assert.deepEqual(txns(effects), [], "claimed again while paused");
  assert.deepEqual(txns(onTick(v, keys, 500)), []);
});

Deno.test("finding 4: a parked result evicted from the pending flush is not held forever: the attempt is given back under the fence", () => {
  const { v, fence } = claimAndRun();
  const [finish] = txns(step(v, {
    type: "worker_exit",
    at: 10,
    task_id: T1,
    fence,
    code: 0,
    signal: null,
    error: null,
    lost: false,
  }));
  // etcd was away: the result went to the pending-flush file, which then evicted it.
  step(v, { type: "result_flushed", at: 11, task_id: T1, fence });
  step(v, {
    type: "txn_done",
    at: 11,
    effect: finish,
    ok: false,
    revision: 0,
    error: "unavailable",
  });
  const effects = txns(
    step(v, { type: "flush_resolved", at: 12, task_id: T1 }),
  );
  assert.equal(effects.length, 1);
  assert.equal(effects[0].reason, "finish");
  assert.deepEqual(effects[0].compare[0], {
    key: keys.claim(T1),
    target: "create",
    equals: fence,
  });
  const put = effects[0].success[0];
  const next = JSON.parse(put.op === "put" ? put.value : "{}");
  assert.equal(next.state, "PENDING");
  assert.match(next.last_error, /attempt lost: worker lost on its node/);
});

Deno.test("ticks between sweeps decide only the workers and the oldest PENDING tasks; the sweep every sweep_every_ms decides every open task", () => {
  const v = cluster("node-a", NODES);
  const requeues = (at: number) =>
    txns(step(v, { type: "tick", at })).filter((e) => e.reason === "requeue");
  assert.deepEqual(requeues(10), [], "the first tick sweeps: nothing to do");
  // A missed event: a CLAIMED task of node-b whose claim is gone, applied
  // without a decision. node-a is its monitor (HRW).
  applyEvent(v, keys, {
    type: "changes",
    at: 20,
    changes: [
      put(
        keys.task(T1),
        envelope("t1", {
          state: "CLAIMED",
          claimant_node_id: "node-b",
          claim_lease_id: "9",
          attempts: 1,
        }),
      ),
    ],
  });
  assert.deepEqual(requeues(110), [], "a tick between sweeps");
  assert.deepEqual(requeues(10 + SWEEP_EVERY_MS - 1), []);
  const [rq] = requeues(10 + SWEEP_EVERY_MS);
  assert.equal(rq?.task_id, T1, "the next sweep re-queues it");
});

Deno.test("a caps update re-decides only the workers and the oldest PENDING tasks; a caps record that appears re-decides everything", () => {
  const v = cluster("node-a", NODES);
  step(v, { type: "tick", at: 10 }); // the first sweep, nothing open yet
  applyEvent(v, keys, {
    type: "changes",
    at: 20,
    changes: [
      put(
        keys.task(T1),
        envelope("t1", {
          state: "CLAIMED",
          claimant_node_id: "node-b",
          claim_lease_id: "9",
          attempts: 1,
        }),
      ),
    ],
  });
  const caps = (id: string, busy: number, created: boolean): KeyChange => {
    const c = put(keys.caps(id), {
      static: { os: "linux", arch: "x86_64" },
      dynamic: { workers_busy: busy, workers_max: 4, health: "ok" },
    });
    return created ? c : { ...c, kv: { ...c.kv!, create_revision: 1 } };
  };
  const requeues = (c: KeyChange) =>
    txns(feed(v, 30, c)).filter((e) => e.reason === "requeue");
  assert.deepEqual(requeues(caps("node-b", 2, false)), [], "an update");
  const [rq] = requeues(caps("node-d", 0, true));
  assert.equal(rq?.task_id, T1, "a new caps record: membership changed");
});
