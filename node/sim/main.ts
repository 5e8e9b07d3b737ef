/**
 * `deno task sim [--seeds N] [--seed S] [--nodes K] [--tasks T] [--first F]`:
 * runs seeded schedules of the simulator and prints a failing seed with its
 * violation and trace. `--seed S` replays one schedule exactly.
 */
import { runSchedule } from "./schedule.ts";

function flag(args: string[], name: string): number | undefined {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    console.error(
      `sim: --${name} must be a non-negative integer: got ${
        JSON.stringify(args[i + 1])
      }`,
    );
    Deno.exit(2);
  }
  return v;
}

if (import.meta.main) {
  const args = Deno.args;
  const params = {
    nodes: flag(args, "nodes") ?? 3,
    tasks: flag(args, "tasks") ?? 50,
  };
  const one = flag(args, "seed");
  const seeds = one !== undefined ? [one] : Array.from(
    { length: flag(args, "seeds") ?? 1000 },
    (_, i) => (flag(args, "first") ?? 1) + i,
  );
  const t0 = performance.now();
  let failed = 0;
  for (const seed of seeds) {
    const o = runSchedule(seed, params, one !== undefined);
    if (o.ok) continue;
    failed++;
    const again = one !== undefined ? o : runSchedule(seed, params, true);
    console.log(`seed ${seed} FAILED: ${again.violation}`);
    console.log(`  faults: ${again.faults.join(" ")}`);
    for (const l of again.trace ?? []) console.log(`  ${l}`);
    if (failed >= 3) break;
  }
  const s = (performance.now() - t0) / 1000;
  console.log(
    `${seeds.length} schedules in ${s.toFixed(1)} s (${
      (seeds.length / s * 60).toFixed(0)
    }/min), ${failed} failed`,
  );
  if (failed > 0) Deno.exit(1);
}
