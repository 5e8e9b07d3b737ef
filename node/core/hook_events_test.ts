import assert from "node:assert/strict";
import { Keys } from "../keys.ts";
import type { Envelope } from "../schema.ts";
import { testEnvelope } from "../test_envelope.ts";
import { EVENT_PAYLOADS, type EventKind } from "../hooks/event_schemas.ts";
import { applyEffects, applyEvent } from "./apply.ts";
import type { Effect, EmitEffect, TxnEffect } from "./effects.ts";
import type { KeyChange, NodeEvent } from "./events.ts";
import { handle } from "./handlers.ts";
import { committedEvents } from "./hook_events.ts";
import { claimTxn, fencedTxn, unclaimedTxn } from "./txns.ts";
import { emptyView, type MutableView, type Versioned } from "./view.ts";

const keys = new Keys("/boi/");
let rev = 100;

function put(key: string, value: unknown, lease = "0"): KeyChange {
  rev++;
  return {
    key,
    revision: rev,
    kv: {
      value: JSON.stringify(value),
      mod_revision: rev,
      create_revision: rev,
      lease,
    },
  };
}

function versioned(env: Envelope): Versioned<Envelope> {
  return { value: env, mod_revision: 5, create_revision: 5, lease: "0" };
}

/** The emits of `effects`, each checked against its kind's schema. */
function emits(effects: Effect[]): EmitEffect[] {
  const out = effects.filter((e): e is EmitEffect => e.kind === "emit");
  for (const e of out) {
    const schema = EVENT_PAYLOADS[e.event as EventKind];
    assert.ok(schema, `unknown kind ${e.event}`);
    schema.parse(e.payload);
  }
  return out;
}

Deno.test("each committed transition maps to its one event, payload valid", () => {
  const env = testEnvelope("s1.t1");
  const claim = claimTxn(keys, versioned(env), "node-a", "7", 10);
  assert.deepEqual(emits(committedEvents(keys, claim, 42)), [{
    kind: "emit",
    event: "task.claimed",
    payload: {
      task_id: "s1.t1",
      spec_id: "s1",
      node_id: "node-a",
      attempt: 1,
      fence: 42,
    },
  }]);
  const claimed: Envelope = {
    ...env,
    state: "CLAIMED",
    attempts: 1,
    claimant_node_id: "node-a",
  };
  const running = fencedTxn(keys, "running", versioned(claimed), 42, {
    ...claimed,
    state: "RUNNING",
    fence: 42,
    started_at: 20,
  }, false);
  assert.equal(
    emits(committedEvents(keys, running, 43))[0].event,
    "task.started",
  );
  const wasRunning: Envelope = {
    ...claimed,
    state: "RUNNING",
    fence: 42,
    started_at: 20,
  };
  const finished = (over: Partial<Envelope>, from = wasRunning) =>
    emits(committedEvents(
      keys,
      fencedTxn(keys, "finish", versioned(from), 42, {
        ...claimed,
        claimant_node_id: null,
        ran_on: "node-a",
        fence: 42,
        started_at: 20,
        finished_at: 50,
        ...over,
      }, true),
      44,
    ));
  const done = finished({ state: "DONE", exit_code: 0 });
  assert.deepEqual(done.map((e) => e.event), ["task.completed"]);
  // Ended before its RUNNING write (CLAIMED→DONE in one write): it started too.
  const folded = finished({ state: "DONE", exit_code: 0 }, claimed);
  assert.deepEqual(folded.map((e) => [e.event, e.payload.started_at]), [
    ["task.started", 20],
    ["task.completed", 20],
  ]);
  assert.equal(done[0].payload.duration_ms, 30);
  assert.equal(done[0].payload.node_id, "node-a");
  const failed = finished({ state: "FAILED", exit_code: 1 });
  assert.deepEqual(
    [failed[0].event, failed[0].payload.final],
    ["task.failed", true],
  );
  const retry = finished({ state: "PENDING", exit_code: 1, not_before: 99 });
  assert.deepEqual(
    [retry[0].event, retry[0].payload.final, retry[0].payload.retry_at],
    ["task.failed", false, 99],
  );
  const cancelled = finished({ state: "CANCELLED" });
  assert.deepEqual(
    [cancelled[0].event, cancelled[0].payload.reason],
    ["task.cancelled", "user"],
  );

  const requeue = (next: Partial<Envelope>) =>
    emits(committedEvents(
      keys,
      unclaimedTxn(keys, "requeue", versioned(claimed), {
        ...claimed,
        ...next,
      }),
      45,
    ));
  const re = requeue({
    state: "PENDING",
    last_error: "lease expired on node-b",
  });
  assert.deepEqual([re[0].event, re[0].payload.from_node_id], [
    "task.reassigned",
    "node-b",
  ]);
  assert.equal(requeue({ state: "FAILED" })[0].event, "task.failed");
  const dep = emits(committedEvents(
    keys,
    unclaimedTxn(keys, "cancel_dependent", versioned(env), {
      ...env,
      state: "CANCELLED",
      last_error: "dependency s1.d FAILED",
    }),
    46,
  ));
  assert.deepEqual([dep[0].event, dep[0].payload.reason], [
    "task.cancelled",
    "dependency",
  ]);
  // Unblocking has no SPEC §8 kind.
  assert.deepEqual(
    committedEvents(
      keys,
      unclaimedTxn(keys, "unblock", versioned(env), env),
      47,
    ),
    [],
  );
});

/** A spec record committing `n` PENDING tasks `<specId>.t<i>`, and the changes that write them. */
function committedSpec(
  specId: string,
  n: number,
): { ids: string[]; changes: KeyChange[] } {
  const ids = Array.from({ length: n }, (_, i) => `${specId}.t${i}`);
  const spec = put(keys.spec(specId), {
    spec_id: specId,
    yaml: "",
    sha256: "x",
    dispatched_by: "t",
    dispatched_at: 0,
    task_ids: ids,
  });
  return {
    ids,
    changes: [...ids.map((id) => put(keys.task(id), testEnvelope(id))), spec],
  };
}

/** A registered node (node-a unless `over` says) that sees node-a and node-b. */
function view(over: Partial<MutableView["config"]> = {}): MutableView {
  const v = emptyView({
    node_id: "node-a",
    workers_max: 4,
    static_caps: { os: "linux", arch: "x86_64" },
    spill_after_ms: 1000,
    spill_step_ms: 100,
    retry_backoff_ms: 1000,
    cancel_grace_ms: 1000,
    claim_failure_window_ms: 300_000,
    claim_failure_limit: 3,
    claim_failure_cooldown_ms: 300_000,
    ...over,
  });
  step(v, { type: "lease_granted", at: 0, lease_id: "7", valid_until: 1e12 });
  const changes = ["node-a", "node-b"].flatMap((n) => [
    put(keys.node(n), {
      node_id: n,
      addr: "x:1",
      version: "0",
      started_at: 0,
      pid: 1,
    }, n === "node-a" ? "7" : "9"),
    put(keys.caps(n), {
      static: { os: "linux", arch: "x86_64" },
      dynamic: { workers_busy: 0, workers_max: 4, health: "ok" },
    }, n === "node-a" ? "7" : "9"),
  ]);
  step(v, { type: "relist", at: 0, revision: rev, kvs: changes });
  return v;
}

function step(v: MutableView, ev: NodeEvent): Effect[] {
  applyEvent(v, keys, ev);
  const effects = handle(v, keys, ev);
  applyEffects(v, effects, ev.at);
  return effects;
}

Deno.test("node.joined comes from the node itself, node.left from the monitor of the node id", () => {
  const v = emptyView(view().config);
  const joined = emits(
    step(v, { type: "lease_granted", at: 0, lease_id: "7", valid_until: 1e12 }),
  );
  assert.deepEqual(joined.map((e) => e.payload), [{
    node_id: "node-a",
    lease_id: "7",
  }]);
  // Only the HRW winner of "node-b" among the rest emits node.left for it.
  const a = view();
  const left = emits(step(a, {
    type: "changes",
    at: 1,
    changes: [{ key: keys.node("node-b"), revision: ++rev, kv: null }],
  }));
  assert.deepEqual(left.map((e) => [e.event, e.payload.node_id]), [[
    "node.left",
    "node-b",
  ]]);
});

Deno.test("task.dispatched: once per task, by its monitor, when the spec commits (never on a re-list)", () => {
  // Views first: the watch delivers only what is newer than their list.
  const views = ["node-a", "node-b"].map((self) => view({ node_id: self }));
  const { ids, changes } = committedSpec("s2", 20);
  const counts = new Map<string, number>();
  for (const v of views) {
    const out = emits(
      step(v, { type: "changes", at: 1, changes: changes }),
    )
      .filter((e) => e.event === "task.dispatched");
    for (const e of out) {
      const id = String(e.payload.task_id);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const again = emits(step(v, {
      type: "relist",
      at: 2,
      revision: rev,
      kvs: changes,
    }));
    assert.equal(again.filter((e) => e.event === "task.dispatched").length, 0);
  }
  assert.deepEqual([...counts.keys()].sort(), [...ids].sort());
  assert.ok([...counts.values()].every((n) => n === 1), String([...counts]));
});

Deno.test("task.dispatched and node.left: a node record without a lease or caps is no monitor, so no event loses its emitter", () => {
  const views = ["node-a", "node-b"].map((self) => view({ node_id: self }));
  // Written by hand: no lease, no caps. Ranked as a member it would win about
  // a third of the tasks on every node, and nobody would emit for those.
  const stray = put(keys.node("node-x"), {
    node_id: "node-x",
    addr: "x:1",
    version: "0",
    started_at: 0,
    pid: 1,
  });
  const { ids, changes } = committedSpec("s4", 30);
  const counts = new Map<string, number>();
  let left = 0;
  for (const v of views) {
    step(v, { type: "changes", at: 1, changes: [stray] });
    for (
      const e of emits(
        step(v, { type: "changes", at: 1, changes: changes }),
      )
    ) {
      if (e.event !== "task.dispatched") continue;
      const id = String(e.payload.task_id);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    // node-c left: its monitor among the live members (a, b) reports it.
    const gone = { key: keys.node("node-c"), revision: ++rev, kv: null };
    left += emits(step(v, { type: "changes", at: 2, changes: [gone] }))
      .filter((e) => e.event === "node.left").length;
  }
  assert.deepEqual(
    ids.filter((id) => counts.get(id) !== 1),
    [],
    `tasks without exactly one task.dispatched: ${[...counts]}`,
  );
  assert.equal(left, 1);
});

Deno.test("without a taker of watched task events (no hooks plugin, no debug log) none is computed; node.left still is, and the decisions are the same", () => {
  const views = {
    on: view({ watched_task_events: true }),
    off: view({ watched_task_events: false }),
  };
  const { changes } = committedSpec("s3", 20);
  const gone: KeyChange = {
    key: keys.node("node-b"),
    revision: ++rev,
    kv: null,
  };
  const run = (watched: boolean) => {
    const v = views[watched ? "on" : "off"];
    const dispatched = step(v, {
      type: "changes",
      at: 1,
      changes: changes,
    });
    const left = step(v, { type: "changes", at: 2, changes: [gone] });
    return { dispatched, left };
  };
  const on = run(true), off = run(false);
  assert.ok(emits(on.dispatched).some((e) => e.event === "task.dispatched"));
  assert.deepEqual(emits(off.dispatched), []);
  assert.deepEqual(
    off.dispatched,
    on.dispatched.filter((e) => e.kind !== "emit"),
  );
  assert.deepEqual(emits(off.left).map((e) => e.event), ["node.left"]);
  assert.deepEqual(off.left, on.left);
});

Deno.test("back-pressure: a stall stops claims and commits, reports saturated once, resumes with results in finish order", () => {
  const v = view();
  const stall: NodeEvent = {
    type: "hooks_backpressure",
    at: 1,
    stalled: true,
    plugin: "hooks",
    unacked: 100,
    window: 100,
  };
  const sat = emits(step(v, stall));
  assert.deepEqual(sat.map((e) => e.event), ["hook.queue.saturated"]);
  // A PENDING task node-a would win is not claimed while stalled.
  const ids = Array.from({ length: 8 }, (_, i) => `s1.p${i}`);
  const spec = put(keys.spec("s1"), {
    spec_id: "s1",
    yaml: "",
    sha256: "x",
    dispatched_by: "t",
    dispatched_at: 0,
    task_ids: ids,
  });
  const during = step(v, {
    type: "changes",
    at: 2,
    changes: [spec, ...ids.map((id) => put(keys.task(id), testEnvelope(id)))],
  });
  assert.deepEqual(during.filter((e) => e.kind === "txn"), []);
  assert.deepEqual(
    step(v, { type: "tick", at: 3000 }).filter((e) => e.kind === "txn"),
    [],
  );
  const resumed = step(v, { ...stall, at: 4000, stalled: false, unacked: 90 });
  const claims = resumed.filter((e): e is TxnEffect =>
    e.kind === "txn" && e.reason === "claim"
  );
  assert.ok(claims.length > 0, "claims resume");
  assert.equal(
    resumed.filter((e) => e.kind === "emit").length,
    0,
    "no second saturated on resume",
  );
});

Deno.test("a waiting task cancelled by the CLI: its monitor emits task.cancelled once", () => {
  const counts: number[] = [];
  for (const self of ["node-a", "node-b"]) {
    const v = view({ node_id: self });
    const spec = put(keys.spec("s3"), {
      spec_id: "s3",
      yaml: "",
      sha256: "x",
      dispatched_by: "t",
      dispatched_at: 0,
      task_ids: ["s3.c"],
    });
    step(v, {
      type: "changes",
      at: 0,
      changes: [put(keys.task("s3.c"), testEnvelope("s3.c")), spec],
    });
    const out = emits(step(v, {
      type: "changes",
      at: 1,
      changes: [put(
        keys.task("s3.c"),
        testEnvelope("s3.c", {
          state: "CANCELLED",
          state_version: 1,
          last_error: "cancelled by user",
        }),
      )],
    }));
    counts.push(out.filter((e) => e.event === "task.cancelled").length);
  }
  assert.deepEqual(counts.sort(), [0, 1]);
});
