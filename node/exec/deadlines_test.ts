/** Many deadlines on one timer: order, settling, mixed timeouts. */
import assert from "node:assert/strict";
import { Deadlines } from "./deadlines.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("deadlines: each fires once at its time; settled ones never", async () => {
  const d = new Deadlines();
  const fired: string[] = [];
  const t0 = performance.now();
  const at: Record<string, number> = {};
  const add = (name: string, ms: number) =>
    d.add(ms, () => {
      fired.push(name);
      at[name] = performance.now() - t0;
    });
  add("a40", 40);
  const b = add("b40", 40);
  add("c10", 10);
  const e = add("e200", 200);
  add("f80", 80);
  d.settle(b, 40);
  await sleep(150);
  assert.deepEqual(fired, ["c10", "a40", "f80"]);
  for (const [name, ms] of Object.entries(at)) {
    const want = Number(name.slice(1));
    assert.ok(
      ms >= want - 1,
      `${name} fired at ${ms.toFixed(1)} ms, before ${want}`,
    );
  }
  d.settle(e, 200);
  assert.equal(d.size, 0, "nothing left once the last one settles");
  await sleep(80);
  assert.deepEqual(fired, ["c10", "a40", "f80"], "e200 was settled");
  d.stop();
});

Deno.test("deadlines: settled heads are dropped at once, so short calls keep the queue short", () => {
  const d = new Deadlines();
  for (let i = 0; i < 10_000; i++) {
    const x = d.add(30_000, () => assert.fail("fired"));
    d.settle(x, 30_000);
  }
  assert.equal(d.size, 0);
  const slow = d.add(30_000, () => {});
  for (let i = 0; i < 100; i++) d.settle(d.add(30_000, () => {}), 30_000);
  assert.equal(d.size, 101, "behind a live head, settled ones wait");
  d.settle(slow, 30_000);
  assert.equal(d.size, 0, "and go with it");
  d.stop();
});

Deno.test("deadlines: a deadline added from a firing one is kept", async () => {
  const d = new Deadlines();
  let second = false;
  d.add(5, () => d.add(5, () => second = true));
  await sleep(60);
  assert.equal(second, true);
  assert.equal(d.size, 0);
});

Deno.test("deadlines: the timer outlives the last settled call (no timer pair per call), stop clears it", async () => {
  const d = new Deadlines();
  let fired = 0;
  for (let i = 0; i < 3; i++) d.settle(d.add(20, () => fired++), 20);
  await sleep(50); // the one armed timer fires, finds nothing due, stays off
  assert.equal(fired, 0);
  d.add(10_000, () => fired++);
  d.stop();
  assert.equal(d.size, 0);
});
