/**
 * The simulator in CI (`deno task test:sim`, a stage of scripts/test.sh of
 * its own, not part of `deno task test`): every regression seed, then a
 * fixed batch of fresh seeds (BOI_SIM_SEEDS, default 2000) on one thread per
 * core, and a check that retention (half the schedules) really retires. A failure prints the seed, the
 * violation and the trace; `deno task sim --seed S` replays it exactly.
 */
import assert from "node:assert/strict";
import { runParallel } from "./parallel.ts";
import { runSchedule } from "./schedule.ts";

const regression: { seed: number; found: string }[] = JSON.parse(
  Deno.readTextFileSync(new URL("./regression_seeds.json", import.meta.url)),
).seeds;

function report(seed: number): string {
  const o = runSchedule(seed, {}, true);
  return [
    `seed ${seed}: ${o.violation}`,
    `  faults: ${o.faults.join(" ")}`,
    ...(o.trace ?? []).map((l) => `  ${l}`),
  ].join("\n");
}

Deno.test("simulator: every regression seed holds every invariant", () => {
  for (const { seed } of regression) {
    const o = runSchedule(seed);
    assert.ok(o.ok, report(seed));
  }
});

Deno.test("simulator: a fixed batch of seeded schedules holds every invariant", async () => {
  const n = Number(Deno.env.get("BOI_SIM_SEEDS") ?? "2000");
  const seeds = Array.from({ length: n }, (_, i) => 100_000 + i);
  const t0 = performance.now();
  // One worker per core: this file runs as its own stage (scripts/test.sh),
  // with the machine to itself.
  const failed = await runParallel(seeds, {}, navigator.hardwareConcurrency);
  const s = (performance.now() - t0) / 1000;
  console.log(`sim: ${n} schedules in ${s.toFixed(1)} s`);
  assert.deepEqual(failed, [], failed.slice(0, 3).map(report).join("\n"));
});

Deno.test("simulator: schedules with retention retire the finished spec (the deletes race the faults' leftovers) and a crashed dispatch's envelopes", () => {
  let retired = 0;
  let orphans = 0;
  for (let seed = 100_000; seed < 100_040; seed++) {
    const o = runSchedule(seed);
    assert.ok(o.ok, report(seed));
    if (o.retired) retired++;
    if (o.orphans_retired) orphans++;
  }
  // About half the schedules draw a retention (schedule.ts's knobs), and
  // half of those a crashed dispatch's envelopes.
  assert.ok(retired >= 10, `only ${retired} of 40 schedules retired the spec`);
  assert.ok(
    orphans >= 4,
    `only ${orphans} of 40 schedules deleted the crashed dispatch's envelopes`,
  );
});
