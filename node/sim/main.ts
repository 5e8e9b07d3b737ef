/**
 * `deno task sim [--seeds N] [--seed S] [--first F] [--nodes K] [--tasks T] [--threads J]`:
 * runs seeded schedules of the simulator on J threads (default: one per core)
 * and prints each failing seed with its violation and trace. `--seed S`
 * replays one schedule exactly, with its trace.
 */
import { runParallel } from "./parallel.ts";
import { runSchedule } from "./schedule.ts";

function flag(args: string[], name: string): number | undefined {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    console.error(
      `sim: --${name} must be a non-negative integer: got ${
        JSON.stringify(args[i + 1] ?? null)
      }`,
    );
    Deno.exit(2);
  }
  return v;
}

function print(seed: number, params: { nodes: number; tasks: number }) {
  const o = runSchedule(seed, params, true);
  console.log(`seed ${seed} FAILED: ${o.violation}`);
  console.log(`  faults: ${o.faults.join(" ")}`);
  for (const l of o.trace ?? []) console.log(`  ${l}`);
  console.log(`  replay: deno task sim --seed ${seed}`);
}

if (import.meta.main) {
  const args = Deno.args;
  const params = {
    nodes: flag(args, "nodes") ?? 3,
    tasks: flag(args, "tasks") ?? 50,
  };
  if (params.nodes < 1 || params.tasks < 1) {
    console.error("sim: --nodes and --tasks must be at least 1");
    Deno.exit(2);
  }
  const one = flag(args, "seed");
  if (one !== undefined) {
    const o = runSchedule(one, params, true);
    if (!o.ok) print(one, params);
    else {console.log(
        `seed ${one} ok: ${o.faults.join(" ")} (${o.steps} steps, ${
          o.virtual_ms.toFixed(0)
        } ms virtual)`,
      );}
    Deno.exit(o.ok ? 0 : 1);
  }
  const first = flag(args, "first") ?? 1;
  const seeds = Array.from(
    { length: flag(args, "seeds") ?? 1000 },
    (_, i) => first + i,
  );
  const threads = Math.max(
    1,
    flag(args, "threads") ?? navigator.hardwareConcurrency,
  );
  const t0 = performance.now();
  const failed = await runParallel(seeds, params, threads);
  const s = (performance.now() - t0) / 1000;
  for (const seed of failed.slice(0, 3)) print(seed, params);
  console.log(
    `${seeds.length} schedules in ${s.toFixed(1)} s (${
      (seeds.length / s * 60).toFixed(0)
    }/min, ${threads} threads, ${params.nodes} nodes × ${params.tasks} tasks), ${failed.length} failed${
      failed.length > 0 ? `: ${failed.slice(0, 20).join(" ")}` : ""
    }`,
  );
  if (failed.length > 0) Deno.exit(1);
}
