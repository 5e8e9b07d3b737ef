import assert from "node:assert/strict";
import { makeClock } from "./clock.ts";

Deno.test("node clock: a wall clock stepped back does not take it back; a jump forward (a suspend) is followed", () => {
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
  assert.equal(now(), 1_060_100, "the elapsed 60 s, not an hour back");
  // A suspend: the monotonic clock stands still, the wall clock moves 10 min
  // (and is still behind by the old step).
  wall += 600_000;
  assert.equal(now(), 1_060_100, "still behind the floor: no change");
  wall += 3_600_000;
  assert.equal(now(), 1_060_100 + 600_000, "caught up: the wall clock again");
  mono += 5;
  wall += 5;
  assert.equal(now(), 1_660_105);
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
