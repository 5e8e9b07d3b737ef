/**
 * The simulator in CI: every regression seed, then a fixed batch of fresh
 * seeds (BOI_SIM_SEEDS, default 2000). A failure prints the seed, the
 * violation and the trace; `deno task sim --seed S` replays it exactly.
 */
import assert from "node:assert/strict";
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

Deno.test("simulator: a fixed batch of seeded schedules holds every invariant", () => {
  const n = Number(Deno.env.get("BOI_SIM_SEEDS") ?? "2000");
  for (let seed = 100_000; seed < 100_000 + n; seed++) {
    const o = runSchedule(seed);
    assert.ok(o.ok, report(seed));
  }
});
