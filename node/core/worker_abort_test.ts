/**
 * An abort is final: once the core has given up a prepared worker (its
 * workspace going, its "not started" exit queued), no later event may spawn
 * it, or its command would run untracked beside the re-queued task.
 */
import assert from "node:assert/strict";
import type { Effect } from "./effects.ts";
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
