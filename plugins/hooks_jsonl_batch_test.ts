/**
 * hooks_jsonl in-process: the events queued together are written with one
 * write and one fsync before any ack; the handle stays open and is reopened
 * after an error (a torn line ended first); after an audit event failed, the
 * later ones of its emitter wait for it, so the sinks keep seq order.
 */
import assert from "node:assert/strict";
import type { HookEvent } from "../node/plugins/contracts.ts";
import { jsonlHooks } from "./hooks_jsonl.ts";
import type { AppendFile } from "./hooks_jsonl_file.ts";
import type { CallContext } from "./sdk/mod.ts";
import { tempDir } from "./test_util.ts";

const ctx = {} as CallContext;

const event = (seq: number, tier: HookEvent["tier"] = "audit"): HookEvent => ({
  seq,
  emitter_node_id: "n1",
  kind: "task.completed",
  ts: 1_700_000_000_000 + seq,
  payload_json: JSON.stringify({ task_id: `s.t${seq}` }),
  dedup_key: `key-${seq}`,
  tier,
});

/** Opens the real file, logging every call into `log`; `failWrite` fails the next write. */
function recordingOpen(log: string[], failWrite: { next: boolean }) {
  return async (path: string): Promise<AppendFile> => {
    log.push("open");
    const f = await Deno.open(path, { read: true, append: true, create: true });
    return {
      async write(p) {
        if (failWrite.next) {
          failWrite.next = false;
          log.push("write failed");
          throw new Error("disk full");
        }
        const text = new TextDecoder().decode(p);
        log.push(`write ${text.split("\n").length - 1} lines`);
        return await f.write(p);
      },
      async sync() {
        log.push("sync");
        await f.sync();
      },
      stat: () => f.stat(),
      read: (p) => f.read(p),
      seek: (o, w) => f.seek(o, w),
      close() {
        log.push("close");
        f.close();
      },
    };
  };
}

const lines = async (file: string) =>
  (await Deno.readTextFile(file)).split("\n").filter((l) => l).map((l) =>
    JSON.parse(l)
  );

Deno.test("hooks_jsonl: the events queued together get one write and one fsync, all before any ack", async () => {
  const dir = await tempDir("boi-hooks-");
  const file = `${dir}/events.jsonl`;
  const log: string[] = [];
  const h = await jsonlHooks({
    file,
    webhook_url: null,
    open: recordingOpen(log, { next: false }),
  });
  const send = (ev: HookEvent) =>
    (h.onEvent(ev, ctx) as Promise<{ acked_seq: number }>).then((a) => {
      log.push(`ack ${a.acked_seq}`);
    });
  // One transport batch: five audit events, one of them twice.
  await Promise.all([1, 2, 3, 3, 4, 5].map((s) => send(event(s))));
  assert.deepEqual(log, [
    "open",
    "write 5 lines",
    "sync",
    "ack 1",
    "ack 2",
    "ack 3",
    "ack 3",
    "ack 4",
    "ack 5",
  ]);
  // best_effort: no fsync; the handle is still open; replays are not written.
  log.length = 0;
  await Promise.all([
    send(event(6, "best_effort")),
    send(event(2)),
    send(event(7, "best_effort")),
  ]);
  assert.deepEqual(log, ["write 2 lines", "ack 6", "ack 2", "ack 7"]);
  assert.deepEqual((await lines(file)).map((l) => l.seq), [
    1,
    2,
    3,
    4,
    5,
    6,
    7,
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("hooks_jsonl: a failed write acks nothing and reopens; a torn last line is ended first", async () => {
  const dir = await tempDir("boi-hooks-");
  const file = `${dir}/events.jsonl`;
  // A crash left half a line behind.
  await Deno.writeTextFile(file, JSON.stringify({ seq: 0 }) + '\n{"seq":9,"ki');
  const log: string[] = [];
  const failWrite = { next: false };
  const h = await jsonlHooks({
    file,
    webhook_url: null,
    open: recordingOpen(log, failWrite),
  });
  assert.deepEqual(await h.onEvent(event(1), ctx), { acked_seq: 1 });
  failWrite.next = true;
  await assert.rejects(
    Promise.resolve(h.onEvent(event(2), ctx)),
    /disk full/,
  );
  assert.deepEqual(await h.onEvent(event(2), ctx), { acked_seq: 2 });
  assert.deepEqual(log, [
    "open",
    "write 1 lines", // the torn line's end
    "write 1 lines",
    "sync",
    "write failed",
    "close",
    "open",
    "write 1 lines",
    "sync",
  ]);
  const text = await Deno.readTextFile(file);
  const [kept, torn, ...rest] = text.split("\n");
  assert.deepEqual([kept, torn], ['{"seq":0}', '{"seq":9,"ki']);
  assert.deepEqual(rest.slice(0, -1).map((l) => JSON.parse(l).seq), [1, 2]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("hooks_jsonl: after an audit event failed, its emitter's later ones are refused until it comes again", async () => {
  const dir = await tempDir("boi-hooks-");
  const file = `${dir}/events.jsonl`;
  const posts: number[] = [];
  let failSeq2 = true;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const body = await req.json();
      if (body.seq === 2 && failSeq2) {
        return new Response("down", { status: 503 });
      }
      posts.push(body.seq);
      return new Response("ok");
    },
  );
  const h = await jsonlHooks({
    file,
    webhook_url: `http://127.0.0.1:${server.addr.port}/events`,
  });
  const other = { ...event(3), emitter_node_id: "n2", dedup_key: "n2-3" };
  const r = await Promise.allSettled(
    [event(1), event(2), event(3), other].map((ev) => h.onEvent(ev, ctx)),
  );
  assert.deepEqual(r.map((x) => x.status), [
    "fulfilled",
    "rejected",
    "rejected",
    "fulfilled", // another emitter is not held up
  ]);
  assert.match(
    String((r[2] as PromiseRejectedResult).reason),
    /seq 2 failed: waiting for it before seq 3/,
  );
  // Still refused while 2 has not come again.
  await assert.rejects(Promise.resolve(h.onEvent(event(4), ctx)), /seq 2/);
  failSeq2 = false;
  const again = await Promise.all(
    [event(2), event(3), event(4)].map((ev) => h.onEvent(ev, ctx)),
  );
  assert.deepEqual(again.map((a) => a.acked_seq), [2, 3, 4]);
  // n1's 1, n2's 3, then n1's 2, 3, 4: n1's in seq order.
  assert.deepEqual(posts, [1, 3, 2, 3, 4]);
  // The file had 2 and 3 from the first batch (its write succeeded).
  assert.deepEqual((await lines(file)).map((l) => l.seq), [1, 2, 3, 3, 4]);
  await Deno.remove(dir, { recursive: true });
});
