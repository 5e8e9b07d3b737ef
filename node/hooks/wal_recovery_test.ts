/**
 * The audit WAL after damage: seqs recovery finds missing are stepped over
 * (one hole used to stall the node for good), a torn last line is cut off
 * before the next append, and an append that fails gives its seq back.
 */
import assert from "node:assert/strict";
import type { HookEvent, Hooks } from "../plugins/contracts.ts";
import { AuditDelivery } from "./delivery.ts";
import { entry, range, seg } from "./wal_test_util.ts";
import { WalFiles } from "./wal.ts";
import {
  ackable,
  type AuditState,
  auditViolation,
  emptyAudit,
  unackedCount,
} from "./wal_state.ts";
import { recover } from "./wal_recover.ts";

const quiet = { log() {} };

async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** An AuditDelivery over `state` whose plugin acks everything it gets. */
async function deliver(state: AuditState, wal?: WalFiles) {
  const dir = await Deno.makeTempDir({ prefix: "boi-walrec-" });
  const files = wal ?? new WalFiles(dir, "hooks");
  if (!wal) files.open(state.active_first);
  const got: HookEvent[] = [];
  const changes: string[] = [];
  const sink: Hooks = {
    onEvent: (ev) => {
      got.push(ev);
      return Promise.resolve({ acked_seq: ev.seq });
    },
  };
  const d = new AuditDelivery({
    node_id: "n",
    plugin: "hooks",
    sink,
    wal: files,
    state,
    window: { size: 100, resume_at: 90 },
    segment_events: 1000,
    log: quiet,
    onBackpressure: (c, n) => changes.push(`${c}@${n}`),
    retry_ms: 5,
    batch_interval_ms: 1,
  });
  d.start();
  return {
    d,
    got,
    changes,
    async [Symbol.asyncDispose]() {
      await d.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("recover: seqs lost right after the HWM (HWM key lost, old segments retired) are stepped over at once", async () => {
  const r = recover(0, [], seg(501, null, range(501, 510)));
  assert.deepEqual(r.gaps, [{
    from_seq: 1,
    to_seq: 500,
    reason: "wal truncated",
  }]);
  assert.equal(r.state.acked, 500);
  assert.equal(unackedCount(r.state), 10, "the 500 lost are not waited for");
  assert.equal(auditViolation(r.state), null);
  // Before: unacked counted 510 against a window of 100, so the node stalled
  // at start and no ack could ever move over seq 1.
  await using a = await deliver(r.state);
  await until(() => a.d.state.acked === 510, "acked 510");
  assert.deepEqual(a.got.map((e) => e.seq), range(501, 510));
  assert.deepEqual(a.changes, []);
  assert.equal(auditViolation(a.d.state), null);
});

Deno.test("recover: a hole in the middle of the WAL is stepped over by the cumulative ack", async () => {
  const r = recover(0, [], seg(1, null, [1, 2, 5, 6, 7]));
  assert.deepEqual(r.state.lost, [{ from: 3, to: 4 }]);
  assert.equal(auditViolation(r.state), null);
  assert.equal(ackable(r.state, new Set([1])), 1);
  assert.equal(ackable(r.state, new Set([1, 2])), 4, "over the hole");
  assert.equal(ackable(r.state, new Set([1, 2, 6])), 4, "not over 5");
  assert.equal(ackable(r.state, new Set([2, 5])), 0, "not over 1");
  assert.match(
    auditViolation({ ...r.state, lost: [] })!,
    /gap/,
    "without the lost range the hole is a violation",
  );
  await using a = await deliver(r.state);
  await until(() => a.d.state.acked === 7, "acked 7");
  assert.deepEqual(a.got.map((e) => e.seq), [1, 2, 5, 6, 7]);
  assert.deepEqual(a.d.state.lost, []);
  a.d.emit("task.claimed", 1, "{}");
  await until(() => a.d.state.acked === 8, "a new event after the hole");
  assert.equal(auditViolation(a.d.state), null);
});

Deno.test("WAL files: a torn last line is cut off at open, so the next append is a whole line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-walrec-" });
  try {
    const wal = new WalFiles(dir, "hooks");
    wal.open(1);
    wal.append([entry(1), entry(2)]);
    wal.close();
    const path = `${dir}/hooks.jsonl`;
    await Deno.writeTextFile(path, '{"seq":3,"ki', { append: true });
    wal.open(1);
    wal.append([entry(3)]);
    wal.close();
    const found = await wal.load();
    assert.equal(found.active?.corrupt, 0, await Deno.readTextFile(path));
    assert.deepEqual(found.active?.entries.map((e) => e.seq), [1, 2, 3]);
    // A crash while the header itself was written: it is written again.
    await Deno.writeTextFile(path, '{"wal":1,"plu');
    wal.open(4);
    wal.append([entry(4)]);
    wal.close();
    const again = await wal.load();
    assert.equal(again.active?.info.first, 4);
    assert.deepEqual(again.active?.entries.map((e) => e.seq), [4]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("audit: an append that fails (a full disk) gives its seq back and is never sent; the next event takes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-walrec-" });
  const wal = new WalFiles(dir, "hooks");
  wal.open(1);
  const real = wal.append.bind(wal);
  let fail = true;
  wal.append = (entries, resolves, sync) => {
    if (fail) throw new Error("No space left on device (os error 28)");
    real(entries, resolves, sync);
  };
  try {
    await using a = await deliver(emptyAudit(), wal);
    assert.throws(() => a.d.emit("task.claimed", 1, '{"lost":true}'), /space/);
    assert.equal(a.d.state.next_seq, 1);
    fail = false;
    a.d.emit("task.claimed", 2, '{"kept":true}');
    await until(() => a.d.state.acked === 1, "acked 1");
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(
      a.got.map((e) => [e.seq, e.payload_json]),
      [[1, '{"kept":true}']],
      "the failed append's event was sent",
    );
    assert.equal(auditViolation(a.d.state), null);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
