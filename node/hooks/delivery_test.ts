import assert from "node:assert/strict";
import type { HookEvent, Hooks } from "../plugins/contracts.ts";
import {
  AuditDelivery,
  type AuditOptions,
  BestEffortDelivery,
} from "./delivery.ts";
import { WalFiles } from "./wal.ts";
import { DEFAULT_WINDOW, emptyAudit } from "./wal_state.ts";
import { recover } from "./wal_recover.ts";

const quiet = { log() {} };

/** A sink that fails the calls `fail` says, and records what it received. */
function sink(fail: (ev: HookEvent, n: number) => boolean) {
  const got: HookEvent[] = [];
  let n = 0;
  const s: Hooks = {
    onEvent(ev) {
      n++;
      if (fail(ev, n)) return Promise.reject(new Error("plugin down"));
      got.push(ev);
      return Promise.resolve({ acked_seq: ev.seq });
    },
  };
  return { s, got };
}

async function until(
  pred: () => boolean,
  what: string,
  tries = 200,
): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** An audit delivery over `sink` and `wal` with the tests' defaults, `over` on top. */
function audit(
  sink: Hooks,
  wal: WalFiles,
  over: Partial<AuditOptions> = {},
): AuditDelivery {
  return new AuditDelivery({
    node_id: "n",
    plugin: "hooks",
    sink,
    wal,
    state: emptyAudit(),
    window: DEFAULT_WINDOW,
    segment_events: 100,
    log: quiet,
    onBackpressure() {},
    ...over,
  });
}

Deno.test("audit delivery, one in flight: in seq order, a failed call is retried from the oldest unacked, nothing skipped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-deliv-" });
  const wal = new WalFiles(dir, "hooks");
  wal.open(1);
  // Calls 2 and 3 fail (a plugin crash): seq 2 must come again, then 3, 4, 5.
  const { s, got } = sink((_ev, n) => n === 2 || n === 3);
  const d = audit(s, wal, {
    segment_events: 2,
    retry_ms: 5,
    batch_interval_ms: 5,
    max_in_flight: 1, // one call at a time: the sink sees each seq in order
  });
  d.start();
  for (let i = 0; i < 5; i++) d.emit("task.claimed", i, "{}");
  await until(() => d.state.acked === 5, "every event acked");
  assert.deepEqual(got.map((e) => e.seq), [1, 2, 3, 4, 5]);
  assert.ok(got.every((e) => e.tier === "audit" && e.dedup_key.length === 64));
  await d.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("audit delivery: a rotate the disk refuses loses nothing; the WAL stays open and the next emit seals the segment", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-deliv-" });
  const wal = new WalFiles(dir, "hooks");
  wal.open(1);
  const { s, got } = sink(() => false);
  const logged: string[] = [];
  const d = audit(s, wal, {
    segment_events: 2,
    batch_interval_ms: 5,
    log: { log: (_level, msg) => logged.push(msg) },
  });
  d.start();
  // The new segment cannot be made (a directory in its place: EISDIR, as
  // ENOSPC would): emits 2-4 each try to rotate and fail.
  Deno.mkdirSync(wal.nextPath);
  Deno.writeTextFileSync(`${wal.nextPath}/x`, ""); // and one rotate cannot clear it
  for (let i = 0; i < 4; i++) d.emit("task.claimed", i, "{}");
  assert.deepEqual(d.state.sealed, [], "nothing sealed while the rotate fails");
  assert.deepEqual(logged.filter((m) => m.includes("rotate failed")).length, 1);
  await until(() => d.state.acked === 4, "the first four acked");
  Deno.removeSync(wal.nextPath, { recursive: true });
  d.emit("task.claimed", 4, "{}"); // the segment is over its size: sealed now
  await until(() => d.state.acked === 5, "every event acked");
  assert.deepEqual(got.map((e) => e.seq), [1, 2, 3, 4, 5]);
  await d.stop();
  wal.close();
  // What a restart reads: one sealed segment of all five, no gap.
  const found = await wal.load();
  assert.deepEqual(found.sealed.map((x) => x.info), [{ first: 1, last: 5 }]);
  const r = recover(5, found.sealed, found.active);
  assert.deepEqual(r.gaps, []);
  assert.equal(r.state.next_seq, 6);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("audit delivery: the window stalls at its size and resumes at resume_at, once each", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-deliv-" });
  const wal = new WalFiles(dir, "hooks");
  wal.open(1);
  let open = false;
  const { s } = sink(() => !open);
  const changes: string[] = [];
  const d = audit(s, wal, {
    window: { size: 10, resume_at: 5 },
    onBackpressure: (c, n) => changes.push(`${c}@${n}`),
    retry_ms: 5,
    batch_interval_ms: 5,
  });
  d.start();
  for (let i = 0; i < 12; i++) d.emit("task.claimed", i, "{}");
  assert.deepEqual(changes, ["stall@10"]);
  open = true;
  await until(() => d.state.acked === 12, "every event acked");
  assert.deepEqual(changes, ["stall@10", "resume@5"]);
  await d.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("best_effort delivery: one retry, then dropped and counted; never waits for the sink", async () => {
  // Seq 2 fails twice (dropped); seq 3 fails once (delivered on its retry).
  const tries = new Map<number, number>();
  const { s, got } = sink((ev) => {
    const n = (tries.get(ev.seq) ?? 0) + 1;
    tries.set(ev.seq, n);
    return ev.seq === 2 || (ev.seq === 3 && n === 1);
  });
  let dropped = 0;
  const d = new BestEffortDelivery({
    node_id: "n",
    plugin: "hooks",
    sink: s,
    log: quiet,
    onDropped: () => dropped++,
    retry_ms: 5,
    batch_interval_ms: 5,
    max_queue: 3,
  });
  d.start();
  for (let i = 0; i < 5; i++) d.emit("task.claimed", i, "{}"); // 4 and 5: queue full
  await until(() => got.length + dropped === 5, "all handled");
  assert.deepEqual(got.map((e) => e.seq), [1, 3]);
  assert.equal(dropped, 3);
  assert.deepEqual([tries.get(2), tries.get(3)], [2, 2]);
  await d.stop();
});

Deno.test("audit intents: on disk once intentsDurable resolves, open until resolved, found again at start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-deliv-" });
  const wal = new WalFiles(dir, "hooks");
  wal.open(1);
  const { s } = sink(() => false);
  const d = audit(s, wal);
  const base = {
    reason: "finish",
    key: "/boi/dispatch-queue/s.t",
    after_rev: 7,
  };
  const a = d.prepare({ ...base, task_id: "s.a", value: "A" });
  const b = d.prepare({ ...base, task_id: "s.b", value: "B" });
  await d.intentsDurable();
  d.emit("task.completed", 1, "{}", a.id); // a's event written: a resolved
  d.void(b.id); // b did not commit
  const c = d.prepare({ ...base, task_id: "s.c", value: "C" });
  await d.intentsDurable();
  await d.stop();
  const found = await new WalFiles(dir, "hooks").load();
  const r = recover(0, found.sealed, found.active);
  assert.deepEqual([...r.state.intents.keys()], [c.id]);
  assert.equal(r.state.intents.get(c.id)!.value, "C");
  assert.equal(r.state.next_intent, c.id + 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("audit delivery: the pause after a failed round doubles while the plugin keeps failing, and is back to retry_ms once it acks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-deliv-" });
  const wal = new WalFiles(dir, "hooks");
  wal.open(1);
  const calls: number[] = [];
  let down = true;
  const s: Hooks = {
    onEvent(ev) {
      calls.push(performance.now());
      return down
        ? Promise.reject(new Error("plugin down"))
        : Promise.resolve({ acked_seq: ev.seq });
    },
  };
  const d = audit(s, wal, {
    retry_ms: 20,
    retry_max_ms: 640,
    batch_interval_ms: 1,
    max_in_flight: 1,
  });
  d.start();
  d.emit("task.claimed", 1, "{}");
  await until(() => calls.length >= 7, "7 failed tries", 1000);
  // A sleep never ends early: each gap is at least its pause.
  const gaps = calls.slice(1, 7).map((t, i) => t - calls[i]);
  [20, 40, 80, 160, 320, 640].forEach((want, i) =>
    assert.ok(
      gaps[i] >= want - 1,
      `pause ${i + 1} was ${gaps[i].toFixed(1)} ms, want >= ${want} (all: ${
        gaps.map((g) => g.toFixed(0))
      })`,
    )
  );
  down = false;
  await until(() => d.state.acked === 1, "acked once the plugin is back");
  // Reset by the ack: the next failure pauses retry_ms again, not 640.
  down = true;
  const before = calls.length;
  d.emit("task.claimed", 2, "{}");
  await until(() => calls.length >= before + 2, "two tries of seq 2", 1000);
  const first = calls[before + 1] - calls[before];
  assert.ok(first < 400, `the first pause after an ack was ${first} ms`);
  down = false;
  await until(() => d.state.acked === 2, "seq 2 acked");
  await d.stop();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("best_effort delivery: at stop, an event waiting for its retry and one a stuck sink never took are dropped and counted", async () => {
  let dropped = 0;
  let calls = 0;
  const never = new Promise<{ acked_seq: number }>(() => {});
  const d = new BestEffortDelivery({
    node_id: "n",
    plugin: "hooks",
    sink: {
      // The first call fails (its retry waits 60 s); the second hangs and
      // fills the window of one, so the third stays queued.
      onEvent: () =>
        ++calls === 1 ? Promise.reject(new Error("plugin down")) : never,
    },
    log: quiet,
    onDropped: () => dropped++,
    retry_ms: 60_000,
    batch_interval_ms: 1,
    max_in_flight: 2,
  });
  d.start();
  d.emit("task.claimed", 1, "{}");
  await until(() => calls === 1, "the first call");
  d.emit("task.claimed", 2, "{}");
  d.emit("task.claimed", 3, "{}");
  await until(() => calls === 2 && d.queued === 1, "seq 2 hanging, 3 queued");
  await d.stop();
  assert.equal(dropped, 2, "seq 1 (its retry never ran) and seq 3 (queued)");
  assert.equal(d.dropped, 2);
  assert.equal(d.queued, 0);
});

Deno.test("audit delivery: stop() ends a pause after a failed round at once (no timer left behind)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-deliv-" });
  const wal = new WalFiles(dir, "hooks");
  wal.open(1);
  let calls = 0;
  const d = audit(
    {
      onEvent: () => (calls++, Promise.reject(new Error("plugin down"))),
    },
    wal,
    {
      retry_ms: 60_000,
      batch_interval_ms: 1,
    },
  );
  d.start();
  d.emit("task.claimed", 1, "{}");
  await until(() => calls === 1, "the failed call");
  await new Promise((r) => setTimeout(r, 20)); // into the pause
  const t0 = performance.now();
  await d.stop();
  const took = performance.now() - t0;
  assert.ok(took < 500, `stop took ${took.toFixed(0)} ms`);
  await Deno.remove(dir, { recursive: true });
});
