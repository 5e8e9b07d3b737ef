import assert from "node:assert/strict";
import type { WorkerEvent } from "./contracts.ts";
import { ReplayLog } from "./replay_log.ts";

const chunk = (n: number, fill = 120): WorkerEvent => ({
  stdout: new Uint8Array(n).fill(fill),
});
const started: WorkerEvent = { started: { pid: 7 } } as WorkerEvent;
const exit: WorkerEvent = { exit: { code: 0, signal: null, error: null } };

async function drain(it: AsyncIterable<WorkerEvent>): Promise<WorkerEvent[]> {
  const out: WorkerEvent[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}

Deno.test("ReplayLog: a live follower gets every chunk; once it has them only the last `limit` bytes stay", async () => {
  const log = new ReplayLog(1000);
  const it = log.follow()[Symbol.asyncIterator]();
  log.push(started);
  assert.deepEqual((await it.next()).value, started);
  for (let i = 0; i < 50; i++) {
    log.push(chunk(100, i));
    const got = (await it.next()).value as { stdout: Uint8Array };
    assert.equal(got.stdout[0], i, `chunk ${i} in order`);
  }
  assert.ok(log.held <= 1000, `held ${log.held} bytes`);
  log.push(exit);
  assert.deepEqual((await it.next()).value, exit);
  assert.equal((await it.next()).done, true);
  // A re-attach: started, the kept tail (the last 10 chunks), exit.
  const again = await drain(log.follow());
  assert.deepEqual(again[0], started);
  assert.deepEqual(again.at(-1), exit);
  const firsts = again.slice(1, -1).map((e) =>
    (e as { stdout: Uint8Array }).stdout[0]
  );
  assert.deepEqual(firsts, [40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
});

Deno.test("ReplayLog: a follower that lags keeps what it has not taken", async () => {
  const log = new ReplayLog(1000);
  const slow = log.follow()[Symbol.asyncIterator]();
  log.push(started);
  for (let i = 0; i < 50; i++) log.push(chunk(100, i));
  log.push(exit);
  assert.equal(log.held, 5000, "nothing dropped before the follower read it");
  const seen: number[] = [];
  for (let r = await slow.next(); !r.done; r = await slow.next()) {
    if ("stdout" in r.value) seen.push(r.value.stdout[0]);
  }
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
  assert.ok(log.held <= 1000, `held ${log.held} bytes after it read them`);
});

Deno.test("LocalPool: a task writing 64 MiB leaves the pool's memory where it was (review of 97b9905: it grew by the output)", async () => {
  // In a process of its own: measuring needs --expose-gc.
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL("testdata/pool_output_memory.ts", import.meta.url).pathname,
    ],
    stderr: "inherit",
  }).output();
  assert.ok(out.success, "the probe failed");
  const { output, grew } = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(output, 64 << 20);
  assert.ok(
    grew < 8 << 20,
    `the pool holds ${grew >> 20} MiB more after a 64 MiB output`,
  );
});
