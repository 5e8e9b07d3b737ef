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

/** Two tasks of spec s1: t1 DONE at 1000, t2 as given; `config` over the defaults. */
function specView(
  self: string,
  t2: Parameters<typeof envelope>[1],
  config: Parameters<typeof cluster>[4] = {},
) {
  const v = cluster(self, NODES, {}, 4, config);
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
      }, {
        // none of its envelopes left, also those this view could not read
        key: `${keys.task("s1")}.`,
        range_end: `${keys.task("s1")}/`,
        target: "version",
        equals: 0,
      }],
      [{ op: "delete", key: keys.spec("s1") }],
    ],
  );
  // Logged when it commits: a refused compare is decided again later.
  assert.ok(!out.some((e) => e.kind === "log" && e.msg === "spec retired"));
  const refused = step(v, {
    type: "txn_done",
    at: at + every + 1,
    effect: spec,
    ok: false,
    revision: 9001,
    error: null,
  });
  assert.ok(!refused.some((e) => e.kind === "log" && e.msg === "spec retired"));
  const committed = step(v, {
    type: "txn_done",
    at: at + every + 2,
    effect: spec,
    ok: true,
    revision: 9002,
    error: null,
  });
  assert.ok(
    committed.some((e) => e.kind === "log" && e.msg === "spec retired"),
  );
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
  const kept = specView(monitor, {
    state: "DONE",
    state_version: 3,
    finished_at: 1000,
  }, { spec_retention_ms: 0 });
  tick(kept, 10);
  assert.deepEqual(tick(kept, far), [], "retention 0 keeps everything");
});

Deno.test("retention: the envelopes of a dispatch that never wrote its record go once this node has seen them so for the orphan grace, each comparing no record and no claim; a committed spec's open task never", () => {
  const owner = hrwWinner("lost", NODES)!;
  const v = cluster(owner, NODES);
  const orphan = (id: string, over: Parameters<typeof envelope>[1] = {}) =>
    put(keys.task(`lost.${id}`), {
      ...envelope(id, over),
      task_id: `lost.${id}`,
      spec_id: "lost",
    });
  // The dispatcher's clock says long ago: the grace runs on this node's.
  feed(v, 1, orphan("a", { dispatched_at: -100 * DAY }));
  tick(v, 10);
  const hour = 3600 * 1000;
  const every = retireEvery(R);
  const firstPass = 10 + every;
  assert.deepEqual(tick(v, firstPass), [], "first seen without a record now");
  assert.equal(v.orphans_seen.get("lost"), firstPass);
  assert.deepEqual(tick(v, firstPass + hour - 1), [], "inside the grace");
  const at = firstPass + hour + every;
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
        { key: keys.dispatching("lost"), target: "version", equals: 0 },
      ],
      [{ op: "delete", key: keys.task("lost.a") }],
    ]],
  );
  // Gone: a later dispatch reusing the id starts a new grace.
  feed(v, at + 5, del(keys.task("lost.a")));
  assert.equal(v.orphans_seen.has("lost"), false);
  assert.ok(
    out.some((e) =>
      e.kind === "log" && e.msg.startsWith("retiring orphan envelopes")
    ),
  );
  // The record came meanwhile (a slow dispatch): forgotten, never deleted.
  const slow = cluster(owner, NODES);
  feed(slow, 1, orphan("a"));
  tick(slow, 10);
  tick(slow, 10 + every);
  feed(
    slow,
    20 + every,
    put(keys.spec("lost"), {
      spec_id: "lost",
      yaml: "",
      sha256: "x",
      dispatched_by: "t",
      dispatched_at: 0,
      task_ids: ["lost.a"],
    }),
  );
  assert.deepEqual(tick(slow, 10 + 2 * every), []);
  assert.equal(slow.orphans_seen.has("lost"), false);
  assert.deepEqual(
    tick(slow, 100 * DAY).filter((t) => t.task_id === "lost.a"),
    [],
    "a committed spec's PENDING task is never deleted",
  );
  // A dispatch still writing (its marker there): never, however long.
  const writing = cluster(owner, NODES);
  feed(
    writing,
    1,
    orphan("a"),
    put(keys.dispatching("lost"), {
      spec_id: "lost",
      dispatched_by: "t",
      transactions: 3,
    }),
  );
  tick(writing, 10);
  tick(writing, 10 + every);
  assert.deepEqual(tick(writing, 100 * DAY), [], "marker there");
  feed(writing, 100 * DAY + 1, del(keys.dispatching("lost")));
  assert.equal(
    tick(writing, 100 * DAY + every).length,
    1,
    "its dispatcher's lease ended: an orphan like any other",
  );
  // Another node's HRW pick; retention 0 keeps them too.
  for (
    const other of [
      cluster(NODES.find((n) => n !== owner)!, NODES),
      cluster(owner, NODES, {}, 4, { spec_retention_ms: 0 }),
    ]
  ) {
    feed(other, 1, orphan("a"));
    tick(other, 10);
    tick(other, 10 + every);
    assert.deepEqual(tick(other, 100 * DAY), []);
  }
});

Deno.test("retention: an orphan delete that found an unreadable spec record is not sent again until its envelope changes; one that found a claim is", () => {
  const v = cluster(hrwWinner("lost", NODES)!, NODES, {}, 4, {
    spec_retention_ms: 1000,
    orphan_grace_ms: 1000,
  });
  const env = { ...envelope("a"), task_id: "lost.a", spec_id: "lost" };
  feed(v, 1, put(keys.task("lost.a"), env));
  tick(v, 10);
  tick(v, 2000); // first seen
  const refuse = (at: number, reads: ReturnType<typeof put>[]) => {
    const [d] = tick(v, at);
    assert.equal(d?.task_id, "lost.a", `a delete at ${at}`);
    step(v, {
      type: "txn_done",
      at: at + 1,
      effect: d,
      ok: false,
      revision: 1,
      error: null,
      reads,
    });
  };
  // A claim appeared (and is gone again): decided anew on the next pass.
  refuse(4000, [del(keys.claim("lost.a"))]);
  // The record is there but invalid: not the same compare again.
  refuse(6000, [put(keys.spec("lost"), { spec_id: "lost" })]);
  assert.deepEqual(tick(v, 8000), [], "the same compare again");
  feed(v, 8001, put(keys.task("lost.a"), { ...env, attempts: 0 }));
  assert.equal(tick(v, 10_000).length, 1, "the envelope changed: decided anew");
});
