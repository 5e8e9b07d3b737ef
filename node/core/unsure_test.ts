import assert from "node:assert/strict";
import type { Effect, EmitEffect, TxnEffect } from "./effects.ts";
import type { KeyChange } from "./events.ts";
import {
  keys,
  nextRev,
  runAndExit,
  step,
  T1,
  txns,
} from "./handlers_test_util.ts";
import { applyEffects, applyEvent } from "./apply.ts";
import type { MutableView } from "./view.ts";
import { sameJson } from "./unsure.ts";

/** What the watch delivers once `fin` committed: its envelope put and its claim delete. */
function committed(fin: TxnEffect): KeyChange[] {
  const rev = nextRev();
  return fin.success.map((op) => ({
    key: op.key,
    revision: rev,
    kv: op.op === "put"
      ? { value: op.value, mod_revision: rev, create_revision: 1, lease: "0" }
      : null,
  }));
}

const errorReply = (fin: TxnEffect, at: number) => ({
  type: "txn_done" as const,
  at,
  effect: fin,
  ok: false,
  revision: 0,
  error: "13 INTERNAL: Received RST_STREAM with code 2",
});

const emitted = (effects: { kind: string }[]) =>
  effects.filter((e) => e.kind === "emit").map((e) => (e as EmitEffect).event);

/**
 * Both orders of the watch and the error answer, and the verdict of a finish
 * sent again meanwhile (its compare fails on the first's commit); returns
 * every event emitted.
 */
function run(
  order: "watch first" | "error first",
): { v: MutableView; events: string[] } {
  const { v, fin } = runAndExit();
  applyEffects(v, [fin], 10);
  const events: string[] = [];
  const changes = committed(fin);
  const resent: TxnEffect[] = [];
  const record = (effects: Effect[]) => {
    events.push(...emitted(effects));
    resent.push(...txns(effects).filter((e) => e.reason === "finish"));
  };
  const watch = () => record(step(v, { type: "changes", at: 11, changes }));
  const error = () => record(step(v, errorReply(fin, 12)));
  if (order === "watch first") {
    watch();
    error();
  } else {
    error();
    watch();
  }
  for (const e of resent.splice(0)) {
    record(step(v, {
      type: "txn_done",
      at: 13,
      effect: e,
      ok: false,
      revision: changes[0].revision,
      error: null,
      reads: changes,
    }));
  }
  for (let at = 14; at < 3000; at += 100) {
    record(step(v, { type: "tick", at }));
  }
  assert.deepEqual(resent, [], "nothing sent after the verdict");
  return { v, events };
}

for (const order of ["watch first", "error first"] as const) {
  Deno.test(`a finish answered with an error that committed (${order}): task.completed once, never result_superseded, the worker retired`, () => {
    const { v, events } = run(order);
    assert.deepEqual(events, ["task.completed"]);
    assert.equal(v.workers.has(T1), false);
    assert.equal(v.unsure.size, 0);
  });
}

Deno.test("an error answer of a finish that did not commit: remembered until the view shows another write", () => {
  const { v, fin } = runAndExit();
  applyEffects(v, [fin], 10);
  // Applied without its handler: the finish is not sent again here.
  applyEvent(v, keys, errorReply(fin, 12));
  assert.equal(v.unsure.size, 1);
  // Someone else's write lands first (a cancel, say): ours did not.
  const t = v.tasks.get(T1)!;
  const rev = nextRev();
  step(v, {
    type: "changes",
    at: 13,
    changes: [{
      key: keys.task(T1),
      revision: rev,
      kv: {
        value: JSON.stringify({ ...t.value, cancel_requested: true }),
        mod_revision: rev,
        create_revision: 1,
        lease: "0",
      },
    }],
  });
  assert.equal(v.unsure.size, 0);
  assert.deepEqual(v.landed, []);
});

Deno.test("a finish sent again after an error answer: its read-back announces the first's commit, once", () => {
  const { v, fin } = runAndExit();
  applyEffects(v, [fin], 10);
  const events: string[] = [];
  const again = step(v, errorReply(fin, 12));
  const [t2] = txns(again);
  assert.equal(t2.reason, "finish", "sent again at once");
  // The watch shows the first one committed while the second is in flight.
  const changes = committed(fin);
  events.push(...emitted(step(v, { type: "changes", at: 13, changes })));
  // The second's compare fails; its read-back is what the first wrote.
  const rev = changes[0].revision;
  events.push(...emitted(step(v, {
    type: "txn_done",
    at: 14,
    effect: t2,
    ok: false,
    revision: rev,
    error: null,
    reads: changes,
  })));
  assert.deepEqual(events, ["task.completed"]);
  assert.equal(v.workers.has(T1), false);
});

Deno.test("sameJson: equal JSON whatever the key order, and only then", () => {
  assert.ok(sameJson({ a: 1, b: { c: [1, { d: null }] } }, {
    b: { c: [1, { d: null }] },
    a: 1,
  }));
  assert.ok(!sameJson({ a: 1 }, { a: 1, b: undefined }));
  assert.ok(!sameJson([1, 2], { 0: 1, 1: 2 }));
  assert.ok(!sameJson({ a: [1] }, { a: [1, 2] }));
  assert.ok(!sameJson(null, {}));
});
