import assert from "node:assert/strict";
import {
  ack,
  assign,
  auditViolation,
  backpressure,
  dedupKey,
  emptyAudit,
  hwmStored,
  markDurable,
  nextToSend,
  retirable,
  rotated,
  shouldRotate,
  unackedCount,
  type WalEntry,
} from "./wal_state.ts";
import { type FoundSegment, recover } from "./wal_recover.ts";
import { range, seg } from "./wal_test_util.ts";
import { parseLines, WalFiles } from "./wal.ts";

Deno.test("dedup_key is sha256 of node, seq, kind, ts: stable, and differs per field", () => {
  const k = dedupKey("node-a", 7, "task.completed", 123);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(k, dedupKey("node-a", 7, "task.completed", 123));
  for (
    const other of [
      dedupKey("node-b", 7, "task.completed", 123),
      dedupKey("node-a", 8, "task.completed", 123),
      dedupKey("node-a", 7, "task.failed", 123),
      dedupKey("node-a", 7, "task.completed", 124),
    ]
  ) assert.notEqual(other, k);
});

Deno.test("nothing is sent before it is durable, and an ack never retires more than is durable", () => {
  const s = emptyAudit();
  const e1 = assign(s, "n", "task.claimed", 1, "{}");
  assert.equal(e1.seq, 1);
  assert.equal(nextToSend(s), null, "not fsynced yet");
  markDurable(s, 1);
  assert.equal(nextToSend(s)?.seq, 1);
  assign(s, "n", "task.started", 2, "{}");
  assert.equal(ack(s, 2), 1, "seq 2 is not durable: only 1 retires");
  assert.equal(s.acked, 1);
  assert.equal(unackedCount(s), 1);
  markDurable(s, 2);
  assert.equal(ack(s, 2), 1);
  assert.equal(ack(s, 1), 0, "acks never go back");
  assert.equal(unackedCount(s), 0);
});

Deno.test("back-pressure stalls once at the window and resumes at 90", () => {
  const s = emptyAudit();
  const changes: string[] = [];
  for (let i = 1; i <= 105; i++) {
    markDurable(s, assign(s, "n", "task.claimed", i, "{}").seq);
    const c = backpressure(s);
    if (c) changes.push(`${c}@${unackedCount(s)}`);
  }
  for (let i = 1; i <= 105; i++) {
    ack(s, i);
    const c = backpressure(s);
    if (c) changes.push(`${c}@${unackedCount(s)}`);
  }
  assert.deepEqual(changes, ["stall@100", "resume@90"]);
  assert.equal(s.stalls, 1);
});

Deno.test("segments rotate and are retired only once every entry in them is acked", () => {
  const s = emptyAudit();
  const sealed = [];
  for (let i = 1; i <= 25; i++) {
    markDurable(s, assign(s, "n", "k", i, "{}").seq);
    if (shouldRotate(s, 10)) sealed.push(rotated(s));
  }
  assert.deepEqual(sealed, [{ first: 1, last: 10 }, { first: 11, last: 20 }]);
  ack(s, 15);
  assert.deepEqual(retirable(s), [], "acked, but the HWM in etcd is behind");
  hwmStored(s, 15);
  assert.deepEqual(retirable(s), [{ first: 1, last: 10 }]);
  assert.deepEqual(retirable(s), []);
  ack(s, 25);
  hwmStored(s, 25);
  assert.deepEqual(retirable(s), [{ first: 11, last: 20 }]);
});

Deno.test("recover: replay after the HWM; holes, truncated segments and a missing WAL are gaps", () => {
  // Clean: HWM 5, active holds 1..9 → replay 6..9, no gap.
  let r = recover(5, [], seg(1, null, range(1, 9)));
  assert.deepEqual(r.gaps, []);
  assert.deepEqual(r.state.unacked.map((e) => e.seq), [6, 7, 8, 9]);
  assert.equal(r.state.next_seq, 10);
  // Fully acked and the sealed ones deleted: nothing to replay, no gap.
  r = recover(20, [], seg(21, null, []));
  assert.deepEqual([r.gaps, r.state.next_seq], [[], 21]);
  // A hole in the middle.
  r = recover(0, [], seg(1, null, [1, 2, 5, 6]));
  assert.deepEqual(r.gaps, [{
    from_seq: 3,
    to_seq: 4,
    reason: "wal truncated",
  }]);
  // A sealed segment cut short: its name says it ran to 20.
  r = recover(10, [seg(11, 20, [11, 12])], seg(21, null, [21]));
  assert.deepEqual(r.gaps, [{
    from_seq: 13,
    to_seq: 20,
    reason: "wal truncated",
  }]);
  // The active segment is gone while the HWM says events existed.
  r = recover(7, [], null);
  assert.deepEqual(r.gaps, [{
    from_seq: 8,
    to_seq: null,
    reason: "wal missing",
  }]);
  assert.equal(r.state.next_seq, 8);
  // Never had a WAL: nothing lost.
  assert.deepEqual(recover(0, [], null).gaps, []);
});

Deno.test("WAL files: append, rotate, reload; a torn last line is not an entry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-wal-" });
  try {
    const wal = new WalFiles(dir, "hooks");
    wal.open(1);
    const s = emptyAudit();
    for (let i = 1; i <= 7; i++) {
      const e = assign(s, "n", "task.claimed", i, JSON.stringify({ i }));
      wal.append([e]);
      markDurable(s, e.seq);
      if (shouldRotate(s, 3)) wal.rotate(rotated(s), s.next_seq);
    }
    wal.close();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "hooks.1-3.jsonl",
      "hooks.4-6.jsonl",
      "hooks.jsonl",
    ]);
    await Deno.writeTextFile(`${dir}/hooks.jsonl`, '{"seq":8,"kin', {
      append: true,
    });
    const found = await wal.load();
    const r = recover(2, found.sealed, found.active);
    assert.deepEqual(r.gaps, []);
    assert.deepEqual(r.state.unacked.map((e) => e.seq), [3, 4, 5, 6, 7]);
    assert.equal(r.state.unacked[4].payload_json, '{"i":7}');
    assert.equal(r.state.active_first, 7);
    assert.equal(parseLines('{"seq":1}\n').corrupt, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auditViolation: holds through assign, durable, ack, HWM; names a broken state", () => {
  const s = emptyAudit();
  for (let i = 1; i <= 5; i++) {
    assign(s, "n", "k", i, "{}");
    assert.equal(auditViolation(s), null);
    markDurable(s, i);
    if (i % 2 === 0) ack(s, i);
    hwmStored(s, s.acked);
    assert.equal(auditViolation(s), null);
  }
  assert.match(
    auditViolation({ ...s, acked: 9, durable: 5 })!,
    /before durable/,
  );
  assert.match(auditViolation({ ...s, hwm: s.acked + 1 })!, /HWM/);
  assert.match(auditViolation({ ...s, unacked: s.unacked.slice(1) })!, /gap/);
});

Deno.test("recover: an open intent knows which of its task's events reached the WAL after it (a crash between one commit's appends)", () => {
  const ev = (
    seq: number,
    kind: string,
    task_id: string,
    attempt = 1,
  ): WalEntry => ({
    seq,
    kind,
    ts: seq,
    payload_json: JSON.stringify({ task_id, attempt, fence: 7 + attempt }),
    dedup_key: dedupKey("n", seq, kind, seq),
  });
  const intent = {
    id: 4,
    task_id: "s.t1",
    reason: "finish",
    from_state: "CLAIMED",
    key: "/boi/dispatch-queue/s.t1",
    value: "{}",
    after_rev: 9,
    at_seq: 3,
  };
  const active: FoundSegment = {
    info: { first: 1, last: null },
    entries: [
      ev(1, "task.claimed", "s.t1"), // before the intent: not its commit's
      ev(2, "task.claimed", "s.t2"),
      ev(3, "task.started", "s.t1"),
      ev(4, "task.started", "s.t2"),
      ev(5, "task.claimed", "s.t1", 2), // a later attempt: its own key
    ],
    corrupt: 0,
    intents: [intent],
    resolved: [],
  };
  const r = recover(0, [], active);
  const open = r.state.intents.get(4);
  assert.ok(open);
  assert.deepEqual([...open.written!].sort(), [
    "task.claimed|2|9",
    "task.started|1|8",
  ]);
  assert.equal(open.from_state, "CLAIMED");
  // Resolved in the WAL: not open, whatever was written.
  const done = recover(0, [], { ...active, resolved: [4] });
  assert.equal(done.state.intents.size, 0);
});

Deno.test("recover: a sealed segment the HWM covers is kept while it holds an open intent, and retired once it closes", () => {
  const intent = {
    id: 1,
    task_id: "s.t1",
    reason: "finish",
    key: "/boi/dispatch-queue/s.t1",
    value: "{}",
    after_rev: 3,
    at_seq: 5,
  };
  const old: FoundSegment = {
    ...seg(1, 10, range(1, 10)),
    intents: [intent],
    resolved: [],
  };
  const r = recover(12, [old, seg(11, 12, [11, 12])], seg(13, null, []));
  // Both: the later one may hold the intent's events.
  assert.deepEqual(r.state.sealed, [{ first: 1, last: 10 }, {
    first: 11,
    last: 12,
  }]);
  assert.deepEqual(retirable(r.state), [], "the intent is still open");
  r.state.intents.delete(1);
  assert.deepEqual(retirable(r.state), [{ first: 1, last: 10 }, {
    first: 11,
    last: 12,
  }]);
  // Without an open intent, covered segments are not tracked (start deletes them).
  const clean = recover(12, [seg(1, 10, range(1, 10))], seg(13, null, []));
  assert.deepEqual(clean.state.sealed, []);
});

Deno.test("WAL files: a crash mid-rotate is no gap: between the renames the new segment waits aside and load() puts it in place; before them a stale one is deleted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-wal-" });
  try {
    const wal = new WalFiles(dir, "hooks");
    wal.open(1);
    const s = emptyAudit();
    for (let i = 1; i <= 3; i++) {
      const e = assign(s, "n", "task.claimed", i, JSON.stringify({ i }));
      wal.append([e]);
      markDurable(s, e.seq);
    }
    wal.rotate(rotated(s), s.next_seq);
    wal.close();
    // The state a crash between the two renames leaves: sealed, and the
    // new active segment (its header only) still aside.
    Deno.renameSync(`${dir}/hooks.jsonl`, `${dir}/hooks.jsonl.next`);
    const found = await wal.load();
    const r = recover(0, found.sealed, found.active);
    assert.deepEqual(r.gaps, [], "no false 'wal missing'");
    assert.equal(r.state.next_seq, 4);
    assert.equal(found.active?.info.first, 4);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "hooks.1-3.jsonl",
      "hooks.jsonl",
    ]);
    // A crash before the first rename: the stale new segment goes.
    Deno.writeTextFileSync(`${dir}/hooks.jsonl.next`, "{}\n");
    await wal.load();
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "hooks.1-3.jsonl",
      "hooks.jsonl",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
