import assert from "node:assert/strict";
import { hrwWinner } from "./hrw.ts";
import {
  cluster,
  del,
  envelope,
  feed,
  keys,
  NODES,
  put,
  step,
  txns,
} from "./handlers_test_util.ts";
import { retireEvery } from "./retire.ts";

const DAY = 24 * 3600 * 1000;
const R = 7 * DAY;
const monitor = hrwWinner("s1", NODES)!;
const other = NODES.find((n) => n !== monitor)!;
const tick = (v: ReturnType<typeof cluster>, at: number) =>
  txns(step(v, { type: "tick", at })).filter((t) => t.reason === "retire");

/** Two tasks of spec s1: t1 DONE at `doneAt`, t2 as given. */
function specView(self: string, t2: Parameters<typeof envelope>[1]) {
  const v = cluster(self, NODES);
  feed(
    v,
    1,
    put(
      keys.task("s1.t1"),
      envelope("t1", {
        state: "DONE",
        state_version: 3,
        finished_at: 1000,
        exit_code: 0,
      }),
    ),
    put(keys.task("s1.t2"), envelope("t2", t2)),
  );
  return v;
}

Deno.test("retention: a finished spec's envelopes, then its record, are deleted by compare on its monitor once its last task ended 7 days ago", () => {
  const v = specView(monitor, {
    state: "FAILED",
    state_version: 3,
    finished_at: 5000,
  });
  tick(v, 10); // the first tick starts the pass clock
  const every = retireEvery(R);
  assert.equal(every, 60_000);
  assert.deepEqual(
    tick(v, 5000 + R - 1),
    [],
    "the last task ended < 7 days ago",
  );
  const at = 5000 + R + every;
  const deletes = tick(v, at);
  assert.deepEqual(
    deletes.map((t) => [t.task_id, t.compare, t.success]).sort(),
    ["s1.t1", "s1.t2"].map((id) => [
      id,
      [
        {
          key: keys.task(id),
          target: "mod",
          equals: v.tasks.get(id)!.mod_revision,
        },
        { key: keys.claim(id), target: "version", equals: 0 },
      ],
      [{ op: "delete", key: keys.task(id) }],
    ]),
  );
  assert.deepEqual(tick(v, at + 100), [], "one pass per interval, in flight");
  // The deletes land; the next pass deletes the record, by compare.
  for (const t of deletes) {
    step(v, {
      type: "txn_done",
      at: at + 5,
      effect: t,
      ok: true,
      revision: 9000,
      error: null,
    });
  }
  feed(v, at + 6, del(keys.task("s1.t1")), del(keys.task("s1.t2")));
  const out = step(v, { type: "tick", at: at + every });
  const [spec] = txns(out);
  assert.deepEqual(
    [spec.task_id, spec.compare, spec.success],
    [
      "s1",
      [{
        key: keys.spec("s1"),
        target: "mod",
        equals: v.specs.get("s1")!.mod_revision,
      }],
      [{ op: "delete", key: keys.spec("s1") }],
    ],
  );
  assert.ok(out.some((e) => e.kind === "log" && e.msg === "spec retired"));
});

Deno.test("retention: nothing of a spec with an open task, on another node than its monitor, or with retention 0", () => {
  const far = 100 * DAY;
  const running = specView(monitor, { state: "RUNNING", state_version: 2 });
  tick(running, 10);
  assert.deepEqual(tick(running, far), [], "a task is still running");
  const elsewhere = specView(other, {
    state: "DONE",
    state_version: 3,
    finished_at: 2000,
  });
  tick(elsewhere, 10);
  assert.deepEqual(tick(elsewhere, far), [], "not this node's spec to retire");
  const kept = cluster(monitor, NODES, {}, 4, { spec_retention_ms: 0 });
  feed(
    kept,
    1,
    put(
      keys.task("s1.t1"),
      envelope("t1", {
        state: "DONE",
        state_version: 3,
        finished_at: 1000,
      }),
    ),
  );
  tick(kept, 10);
  assert.deepEqual(tick(kept, far), [], "retention 0 keeps everything");
});

Deno.test("retention: the envelopes of a dispatch that never wrote its record go after the orphan grace, each comparing no record and no claim; a committed spec's open task never", () => {
  const v = cluster(hrwWinner("lost", NODES)!, NODES);
  const orphan = (id: string, over: Parameters<typeof envelope>[1] = {}) =>
    put(keys.task(`lost.${id}`), {
      ...envelope(id, over),
      task_id: `lost.${id}`,
      spec_id: "lost",
    });
  feed(v, 1, orphan("a"), orphan("b", { dispatched_at: 600_000 }));
  tick(v, 10);
  const hour = 3600 * 1000;
  const every = retireEvery(R);
  // The grace is the larger of the retention (7 days) and the orphan grace.
  assert.deepEqual(tick(v, hour + every), [], "7 days are not over");
  const at = R + every * 2;
  const out = step(v, { type: "tick", at });
  const deletes = txns(out).filter((t) => t.reason === "retire");
  assert.deepEqual(
    deletes.map((t) => [t.task_id, t.compare, t.success]),
    [[
      "lost.a",
      [
        {
          key: keys.task("lost.a"),
          target: "mod",
          equals: v.tasks.get("lost.a")!.mod_revision,
        },
        { key: keys.claim("lost.a"), target: "version", equals: 0 },
        { key: keys.spec("lost"), target: "version", equals: 0 },
      ],
      [{ op: "delete", key: keys.task("lost.a") }],
    ]],
    "lost.b was dispatched 10 min later: not yet",
  );
  assert.ok(
    out.some((e) =>
      e.kind === "log" && e.msg.startsWith("orphan envelopes retired")
    ),
  );
  // A short retention still waits the orphan grace (1 hour by default), and
  // the spec-less tasks of another node's HRW pick are not this node's.
  const short = cluster(hrwWinner("lost", NODES)!, NODES, {}, 4, {
    spec_retention_ms: 1000,
  });
  feed(short, 1, orphan("a"));
  tick(short, 10);
  assert.deepEqual(tick(short, hour - 1000), [], "inside the orphan grace");
  assert.equal(tick(short, hour + 1000).length, 1);
  const elsewhere = cluster(
    NODES.find((n) => n !== hrwWinner("lost", NODES))!,
    NODES,
  );
  feed(elsewhere, 1, orphan("a"));
  tick(elsewhere, 10);
  assert.deepEqual(tick(elsewhere, 100 * DAY), []);
  // s1 has its record: a PENDING task of it stays, however old.
  const committed = specView(monitor, { state: "PENDING" });
  tick(committed, 10);
  assert.ok(
    tick(committed, 100 * DAY).every((t) => t.task_id !== "s1.t2"),
    "a committed spec's PENDING task is never deleted",
  );
});

Deno.test("retention: an orphan delete refused (a spec record this view cannot read) is not sent again until its envelope changes", () => {
  const v = cluster(hrwWinner("lost", NODES)!, NODES, {}, 4, {
    spec_retention_ms: 1000,
    orphan_grace_ms: 1000,
  });
  const env = { ...envelope("a"), task_id: "lost.a", spec_id: "lost" };
  feed(v, 1, put(keys.task("lost.a"), env));
  tick(v, 10);
  const [first] = tick(v, 5000);
  assert.equal(first?.task_id, "lost.a");
  step(v, {
    type: "txn_done",
    at: 5001,
    effect: first,
    ok: false,
    revision: 9000,
    error: null,
    reads: [],
  });
  assert.deepEqual(tick(v, 10_000), [], "the same compare again");
  feed(v, 10_001, put(keys.task("lost.a"), { ...env, attempts: 0 }));
  assert.equal(tick(v, 20_000).length, 1, "the envelope changed: decided anew");
});
