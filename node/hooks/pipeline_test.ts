/**
 * Both tiers keep several OnEvent calls in flight: emission order on the
 * wire, the cap, cumulative acks over the contiguous run only, a failure's
 * resend from the oldest unacked (audit) and one retry then drop
 * (best_effort) without holding the others up.
 */
import assert from "node:assert/strict";
import type { HookAck, HookEvent, Hooks } from "../plugins/contracts.ts";
import { AuditDelivery, BestEffortDelivery } from "./delivery.ts";
import { InFlight } from "./in_flight.ts";
import { WalFiles } from "./wal.ts";
import { auditViolation, DEFAULT_WINDOW, emptyAudit } from "./wal_state.ts";

const quiet = { log() {} };

/** A sink whose answers the test gives, one call at a time, in any order. */
function heldSink() {
  const calls: HookEvent[] = [];
  const open = new Map<number, PromiseWithResolvers<HookAck>>();
  let maxOpen = 0;
  const s: Hooks = {
    onEvent(ev) {
      calls.push(ev);
      const p = Promise.withResolvers<HookAck>();
      open.set(ev.seq, p);
      maxOpen = Math.max(maxOpen, open.size);
      return p.promise;
    },
  };
  const take = (seq: number) => {
    const p = open.get(seq);
    assert.ok(p, `seq ${seq} is not in flight (open: ${[...open.keys()]})`);
    open.delete(seq);
    return p;
  };
  return {
    s,
    calls,
    open,
    maxOpen: () => maxOpen,
    ok: (seq: number, acked_seq = seq) => take(seq).resolve({ acked_seq }),
    fail: (seq: number) => take(seq).reject(new Error("plugin down")),
  };
}

async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function audit(
  sink: Hooks,
  o: { max_in_flight: number; slow_answer_ms?: number },
) {
  const dir = await Deno.makeTempDir({ prefix: "boi-pipe-" });
  const wal = new WalFiles(dir, "hooks");
  wal.open(1);
  const d = new AuditDelivery({
    node_id: "n",
    plugin: "hooks",
    sink,
    wal,
    state: emptyAudit(),
    window: DEFAULT_WINDOW,
    segment_events: 1000,
    log: quiet,
    onBackpressure() {},
    retry_ms: 5,
    batch_interval_ms: 5,
    ...o,
  });
  d.start();
  return {
    d,
    async [Symbol.asyncDispose]() {
      await d.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const seqs = (evs: HookEvent[]) => evs.map((e) => e.seq);

/** Emits and acks `n` events one by one: each quick answer widens the window by one. */
async function warm(
  k: ReturnType<typeof heldSink>,
  d: AuditDelivery,
  n: number,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    d.emit("task.claimed", i, "{}");
    const seq = d.state.next_seq - 1;
    await until(() => k.open.has(seq), `seq ${seq} sent`);
    k.ok(seq);
    await until(() => d.state.acked === seq, `seq ${seq} acked`);
  }
}

Deno.test("audit pipelining: emission order on the wire; the window grows per quick answer up to max_in_flight", async () => {
  const k = heldSink();
  await using a = await audit(k.s, { max_in_flight: 4 });
  for (let i = 0; i < 12; i++) a.d.emit("task.claimed", i, "{}");
  await until(() => k.calls.length === 1, "one call");
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(k.calls.length, 1, "the window starts at one");
  k.ok(1);
  await until(() => k.calls.length === 3, "2 and 3 once 1 was answered");
  k.ok(2);
  k.ok(3);
  await until(() => k.calls.length === 7, "4 more once 2 and 3 were");
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(k.open.size, 4, "max_in_flight caps the window");
  for (let seq = 4; seq <= 12; seq++) {
    k.ok(seq);
    await until(() => a.d.state.acked === seq, `seq ${seq} acked`);
  }
  assert.deepEqual(seqs(k.calls), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.equal(k.maxOpen(), 4);
  assert.equal(a.d.delivered, 12);
  assert.equal(auditViolation(a.d.state), null);
});

Deno.test("audit pipelining: a slow sink is served one call at a time", async () => {
  const calls: number[] = [];
  let open = 0;
  let maxOpen = 0;
  const s: Hooks = {
    async onEvent(ev) {
      calls.push(ev.seq);
      maxOpen = Math.max(maxOpen, ++open);
      await new Promise((r) => setTimeout(r, 60));
      open--;
      return { acked_seq: ev.seq };
    },
  };
  await using a = await audit(s, { max_in_flight: 64, slow_answer_ms: 50 });
  for (let i = 0; i < 6; i++) a.d.emit("task.claimed", i, "{}");
  await until(() => a.d.state.acked === 6, "every event acked");
  assert.deepEqual(calls, [1, 2, 3, 4, 5, 6]);
  assert.equal(maxOpen, 1);
});

Deno.test("audit pipelining: the ack moves over the contiguous run of answers only, never past what was sent", async () => {
  const k = heldSink();
  await using a = await audit(k.s, { max_in_flight: 64 });
  await warm(k, a.d, 3); // 1..3 acked, the window at 4
  for (let i = 0; i < 4; i++) a.d.emit("task.claimed", i, "{}");
  await until(() => k.open.size === 4, "4 calls in flight");
  assert.deepEqual([...k.open.keys()], [4, 5, 6, 7]);
  k.ok(6);
  k.ok(5);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(a.d.state.acked, 3, "6 and 5 answered, 4 not: nothing acked");
  k.ok(4);
  await until(() => a.d.state.acked === 6, "4, 5, 6 acked together");
  // A plugin claiming more than it was sent acks only what it was sent.
  k.ok(7, 1000);
  await until(() => a.d.state.acked === 7, "7 acked");
  assert.equal(a.d.state.unacked.length, 0);
  assert.equal(auditViolation(a.d.state), null);
});

Deno.test("audit pipelining: after a failure nothing new leaves until the calls in flight settle; resend from the oldest unacked", async () => {
  const k = heldSink();
  await using a = await audit(k.s, { max_in_flight: 64 });
  await warm(k, a.d, 3); // 1..3 acked, the window at 4
  for (let i = 0; i < 4; i++) a.d.emit("task.claimed", i, "{}");
  await until(() => k.open.size === 4, "4 calls in flight");
  assert.deepEqual([...k.open.keys()], [4, 5, 6, 7]);
  k.fail(5);
  k.ok(4);
  k.ok(6); // answered, but 5 is not acked: 6 is not acked either
  a.d.emit("task.claimed", 9, "{}"); // seq 8: must wait for 7 to settle
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seqs(k.calls), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(a.d.state.acked, 4);
  k.ok(7);
  await until(() => k.calls.length > 7, "the resend from 5");
  assert.equal(k.calls[7].seq, 5);
  assert.equal(a.d.state.acked, 4, "nothing past the failed seq was acked");
  // The window is narrow again after the failure: answer what is open, round by round.
  while (a.d.state.acked < 8) {
    for (const seq of [...k.open.keys()]) k.ok(seq);
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(seqs(k.calls).slice(7), [5, 6, 7, 8]);
  await until(() => a.d.state.acked === 8, "every event acked");
  assert.equal(auditViolation(a.d.state), null);
});

Deno.test("best_effort pipelining: emission order, capped; a failed event gets one retry without holding later ones, then is dropped", async () => {
  const tries = new Map<number, number>();
  const got: number[] = [];
  let open = 0;
  let maxOpen = 0;
  // Seq 2 always fails (dropped after its retry); seq 4 fails once.
  const s: Hooks = {
    async onEvent(ev) {
      const n = (tries.get(ev.seq) ?? 0) + 1;
      tries.set(ev.seq, n);
      maxOpen = Math.max(maxOpen, ++open);
      await new Promise((r) => setTimeout(r, 5));
      open--;
      if (ev.seq === 2 || (ev.seq === 4 && n === 1)) {
        throw new Error("plugin down");
      }
      got.push(ev.seq);
      return { acked_seq: ev.seq };
    },
  };
  let dropped = 0;
  const d = new BestEffortDelivery({
    node_id: "n",
    plugin: "hooks",
    sink: s,
    log: quiet,
    onDropped: () => dropped++,
    retry_ms: 200,
    max_in_flight: 3,
    batch_interval_ms: 5,
  });
  d.start();
  for (let i = 0; i < 10; i++) d.emit("task.claimed", i, "{}");
  await until(() => got.length + dropped === 10, "every event handled");
  // 4's retry came 200 ms later: the others went on meanwhile.
  assert.deepEqual(got, [1, 3, 5, 6, 7, 8, 9, 10, 4]);
  assert.equal(dropped, 1);
  assert.deepEqual([tries.get(2), tries.get(4), tries.get(5)], [2, 2, 1]);
  assert.ok(maxOpen <= 3, `at most 3 open, saw ${maxOpen}`);
  assert.equal(d.delivered, 9);
  await d.stop();
});

Deno.test("the window: +1 per quick answer up to max, halved once per slow batch, 1 after a failure", () => {
  const w = new InFlight(8, 500);
  assert.equal(w.window, 1);
  for (let i = 0; i < 20; i++) w.answered(3);
  assert.equal(w.window, 8);
  for (let i = 0; i < 8; i++) w.answered(900); // one slow batch of 8
  assert.equal(w.window, 4);
  w.failed();
  assert.equal(w.window, 1);
  w.begin();
  assert.ok(w.full);
  w.answered(3);
  assert.ok(!w.full);
});

Deno.test("best_effort stop: what is still queued leaves at once, without waiting for the batch interval", async () => {
  const got: number[] = [];
  const s: Hooks = {
    onEvent(ev) {
      got.push(ev.seq);
      return Promise.resolve({ acked_seq: ev.seq });
    },
  };
  const d = new BestEffortDelivery({
    node_id: "n",
    plugin: "hooks",
    sink: s,
    log: quiet,
    onDropped() {},
    batch_interval_ms: 60_000,
  });
  d.start();
  d.emit("task.claimed", 1, "{}"); // the first after a quiet spell leaves at once
  await until(() => got.length === 1, "the first event");
  d.emit("task.claimed", 2, "{}");
  d.emit("task.claimed", 3, "{}"); // these would wait a minute
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(got, [1]);
  const t0 = performance.now();
  await d.stop();
  assert.deepEqual(got, [1, 2, 3]);
  assert.ok(performance.now() - t0 < 900, "stop did not wait out its cap");
  assert.equal(d.queued, 0);
});
