import assert from "node:assert/strict";
import { leaseDeadline, makeClock, MAX_SLEW } from "./clock.ts";

Deno.test("node clock: a wall clock stepped back does not take it back; it slews to it at 1 %; a jump forward (a suspend) is followed", () => {
  let wall = 1_000_000;
  let mono = 50;
  const now = makeClock(() => wall, () => mono);
  assert.equal(now(), 1_000_000);
  mono += 100;
  wall += 100;
  assert.equal(now(), 1_000_100);
  // NTP steps the wall clock back an hour while 60 s pass.
  mono += 60_000;
  wall += 60_000 - 3_600_000;
  const afterStep = now();
  assert.equal(afterStep, 1_060_100 - 600, "60 s on, less 1 % of them");
  assert.ok(afterStep > wall, "still ahead of the wall clock");
  // Slewing: 100 s later, 99 s on.
  mono += 100_000;
  wall += 100_000;
  assert.equal(now(), afterStep + 99_000);
  // Long enough, and it is the wall clock again.
  mono += 400_000_000;
  wall += 400_000_000;
  assert.equal(now(), wall);
  // A suspend: the monotonic clock stands still, the wall clock moves 10 min.
  wall += 600_000;
  assert.equal(now(), wall, "followed at once");
});

Deno.test("node clock: never goes back, whatever the sources do", () => {
  let wall = 5_000;
  let mono = 0;
  const now = makeClock(() => wall, () => mono);
  let prev = now();
  for (let i = 0; i < 1000; i++) {
    mono += (i * 7919) % 13;
    wall += ((i * 104729) % 41) - 20;
    const t = now();
    assert.ok(t >= prev, `step ${i}: ${t} after ${prev}`);
    prev = t;
  }
});

Deno.test("leaseDeadline: a lease is trusted for its TTL less the slew's 1 %", () => {
  assert.equal(MAX_SLEW, 0.01);
  assert.equal(leaseDeadline(1_000, 10_000), 10_900);
  assert.equal(leaseDeadline(0, 2_000), 1_980);
});
