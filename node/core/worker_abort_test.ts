/**
 * An abort is final: once the core has given up a prepared worker (its
 * workspace going, its "not started" exit queued), no later event may spawn
 * it, or its command would run untracked beside the re-queued task.
 */
import assert from "node:assert/strict";
import type { Effect, EmitEffect } from "./effects.ts";
import {
  cluster,
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

const kinds = (es: Effect[]) => es.map((e) => e.kind);

Deno.test("a prepared worker aborted for a lost claim is not spawned when the claim looks ours again before its exit lands", () => {
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
  // Prepared while the lease is not known alive (after a freeze): it waits.
  v.lease_valid_until = 2;
  const waiting = step(v, {
    type: "worker_prepared",
    at: 2,
    task_id: T1,
    fence,
    workdir: "/w",
    env: {},
  });
  assert.deepEqual(kinds(waiting), []);
  // The envelope turns into a record this node cannot read (a hand edit, a
  // newer node's field): the claim is no longer provably ours, so it aborts.
  const good = v.tasks.get(T1)!.value;
  const bad = feed(v, 3, put(keys.task(T1), { ...good, state: "WEIRD" }));
  assert.deepEqual(kinds(bad), ["abort"]);
  // Events queued before the abort's exit: the lease renewed and the
  // envelope readable again. The claim looks ours once more.
  v.lease_valid_until = 1e15;
  const back = feed(
    v,
    4,
    put(keys.task(T1), { ...good, state_version: good.state_version + 2 }),
  );
  assert.deepEqual(kinds(back), [], "spawned after its abort");
  // The abort's exit lands: the attempt is given back under the fence.
  const fin = txns(step(v, {
    type: "worker_exit",
    at: 5,
    task_id: T1,
    fence,
    code: null,
    signal: null,
    error: "not started: claim lost",
    lost: true,
  }));
  assert.equal(fin.length, 1);
  assert.equal(
    JSON.parse((fin[0].success[0] as { value: string }).value).state,
    "PENDING",
  );
});

const emitted = (es: Effect[]) =>
  es.filter((e) => e.kind === "emit").map((e) => (e as EmitEffect).event);

Deno.test("a task cancelled during Prepare never started: its CANCELLED envelope has no started_at and no task.started is emitted", () => {
  const all: string[] = [];
  const rec = (es: Effect[]) => (all.push(...emitted(es)), es);
  const v = cluster("node-a", NODES);
  const [claim] = txns(feed(v, 0, put(keys.task(T1), envelope("t1"))));
  const fence = nextRev();
  rec(
    step(v, {
      type: "txn_done",
      at: 1,
      effect: claim,
      ok: true,
      revision: fence,
      error: null,
    }),
  );
  // tasks cancel while Prepare runs: nothing to stop yet.
  const env = v.tasks.get(T1)!.value;
  assert.deepEqual(
    rec(
      feed(
        v,
        2,
        put(keys.task(T1), {
          ...env,
          cancel_requested: true,
          state_version: env.state_version + 1,
        }),
      ),
    ).map((e) => e.kind),
    [],
  );
  const abort = rec(
    step(v, {
      type: "worker_prepared",
      at: 3,
      task_id: T1,
      fence,
      workdir: "/w",
      env: {},
    }),
  );
  assert.deepEqual(abort.map((e) => e.kind), ["abort"]);
  const [fin] = txns(
    rec(
      step(v, {
        type: "worker_exit",
        at: 4,
        task_id: T1,
        fence,
        code: null,
        signal: null,
        error: "not started: cancel requested",
        lost: true,
      }),
    ),
  );
  const next = JSON.parse((fin.success[0] as { value: string }).value);
  assert.equal(next.state, "CANCELLED");
  rec(
    step(v, {
      type: "txn_done",
      at: 5,
      effect: fin,
      ok: true,
      revision: nextRev(),
      error: null,
    }),
  );
  assert.deepEqual(
    { started_at: next.started_at, started: all.includes("task.started") },
    { started_at: null, started: false },
    JSON.stringify(all),
  );
});
