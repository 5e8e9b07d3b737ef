import assert from "node:assert/strict";
import type { Effect, NodeEvent, TxnEffect } from "../core/mod.ts";
import type { PrepareResponse } from "../exec/contracts.ts";
import { PrepareAhead, unpreparedClaim } from "./prepare_ahead.ts";

function fake() {
  const prepared: string[] = [];
  const cleaned: string[] = [];
  const answers = new Map<string, PromiseWithResolvers<PrepareResponse>>();
  const ahead = new PrepareAhead({
    prepare: (specId, taskId) => {
      prepared.push(`${specId}/${taskId}`);
      const p = Promise.withResolvers<PrepareResponse>();
      answers.set(taskId, p);
      return p.promise;
    },
    cleanup: (specId, taskId, workdir) => {
      workdir.then((w) => cleaned.push(`${specId}/${taskId}:${w}`), () => {});
    },
  });
  return { ahead, prepared, cleaned, answers };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("a Prepare started ahead is what the prepare effect gets, once", async () => {
  const f = fake();
  f.ahead.start("s", "s.t");
  f.ahead.start("s", "s.t"); // the same claim again: still one Prepare
  assert.deepEqual(f.prepared, ["s/s.t"]);
  const got = f.ahead.take("s.t");
  assert.ok(got);
  assert.equal(f.ahead.take("s.t"), undefined);
  f.answers.get("s.t")!.resolve({ workdir: "/w/s.t", env: {} });
  assert.equal((await got).workdir, "/w/s.t");
  f.ahead.drop("s.t"); // taken: nothing to clean
  await tick();
  assert.deepEqual(f.cleaned, []);
});

Deno.test("a dropped Prepare is cleaned up once it answers; a failed one needs nothing", async () => {
  const f = fake();
  f.ahead.start("s", "s.a");
  f.ahead.start("s", "s.b");
  f.ahead.drop("s.a");
  f.ahead.drop("s.b");
  assert.equal(f.ahead.size, 0);
  assert.deepEqual(f.cleaned, []); // the workdir is not known yet
  f.answers.get("s.a")!.resolve({ workdir: "/w/s.a", env: {} });
  f.answers.get("s.b")!.reject(new Error("disk full"));
  await tick();
  assert.deepEqual(f.cleaned, ["s/s.a:/w/s.a"]);
});

Deno.test("a claim answered without a prepare of it is the one to drop", () => {
  const claim: TxnEffect = {
    kind: "txn",
    reason: "claim",
    task_id: "s.t",
    compare: [],
    success: [],
  };
  const done = (effect: TxnEffect, ok: boolean): NodeEvent => ({
    type: "txn_done",
    at: 0,
    effect,
    ok,
    revision: 7,
    error: null,
  });
  const prepare: Effect = {
    kind: "prepare",
    task_id: "s.t",
    fence: 7,
    lease: "1",
    attempt: 1,
    envelope: {} as never,
  };
  assert.equal(unpreparedClaim(done(claim, false), []), "s.t");
  assert.equal(unpreparedClaim(done(claim, true), [prepare]), null);
  assert.equal(
    unpreparedClaim(done(claim, true), [{ ...prepare, task_id: "s.u" }]),
    "s.t",
  );
  assert.equal(
    unpreparedClaim(done({ ...claim, reason: "finish" }, true), []),
    null,
  );
  assert.equal(unpreparedClaim({ type: "tick", at: 0 }, []), null);
});

Deno.test("stopping drops every Prepare started ahead and not taken", async () => {
  const f = fake();
  f.ahead.start("s", "s.a");
  f.ahead.start("s", "s.b");
  f.ahead.take("s.b");
  f.ahead.dropAll();
  assert.equal(f.ahead.size, 0);
  f.answers.get("s.a")!.resolve({ workdir: "/w/s.a", env: {} });
  f.answers.get("s.b")!.resolve({ workdir: "/w/s.b", env: {} });
  await tick();
  assert.deepEqual(f.cleaned, ["s/s.a:/w/s.a"]);
});
