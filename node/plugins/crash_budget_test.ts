/** The crash budget is pure: crash times and a clock in, a verdict out. */
import assert from "node:assert/strict";
import {
  addCrash,
  crashesInWindow,
  DEFAULT_CRASH_BUDGET as RULE,
  unstableUntil,
} from "./crash_budget.ts";

const MIN = 60_000;

Deno.test("crash budget: 3 crashes within 5 minutes may restart; the 4th makes it unstable", () => {
  const t0 = 1_000_000_000;
  let crashes: number[] = [];
  for (let i = 0; i < 3; i++) {
    crashes = addCrash(crashes, t0 + i * MIN, RULE);
    assert.equal(unstableUntil(crashes, t0 + i * MIN, RULE), null);
  }
  crashes = addCrash(crashes, t0 + 3 * MIN, RULE);
  assert.equal(crashes.length, 4);
  // Free again just after the first crash leaves the window.
  assert.equal(unstableUntil(crashes, t0 + 3 * MIN, RULE), t0 + 5 * MIN);
});

Deno.test("crash budget: once the window passes the oldest crash, it may restart again", () => {
  const t0 = 5_000_000;
  const crashes = [t0, t0 + 1000, t0 + 2000, t0 + 3000];
  const until = unstableUntil(crashes, t0 + 3000, RULE)!;
  assert.equal(unstableUntil(crashes, until - 1, RULE), until);
  assert.equal(unstableUntil(crashes, until, RULE), null);
  assert.deepEqual(crashesInWindow(crashes, until, RULE), [
    t0 + 1000,
    t0 + 2000,
    t0 + 3000,
  ]);
});

Deno.test("crash budget: 4 crashes spread over more than the window never make it unstable", () => {
  let crashes: number[] = [];
  for (let i = 0; i < 10; i++) {
    const now = i * 2 * MIN;
    crashes = addCrash(crashes, now, RULE);
    assert.equal(unstableUntil(crashes, now, RULE), null, `crash ${i + 1}`);
    assert.ok(crashes.length <= 3);
  }
});

Deno.test("crash budget: a list from elsewhere (etcd) is sorted, and junk and old entries are dropped", () => {
  const now = 10 * MIN;
  assert.deepEqual(
    crashesInWindow([now - MIN, NaN, now - 6 * MIN, now - 2 * MIN], now, RULE),
    [now - 2 * MIN, now - MIN],
  );
  const rule = { budget: 1, window_ms: 1000 };
  assert.equal(unstableUntil([now - 10, now - 20], now, rule), now - 20 + 1000);
});
