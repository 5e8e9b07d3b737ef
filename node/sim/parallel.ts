/**
 * Runs seeds of the simulator on worker threads (`deno task sim` and the CI
 * batch in sim_test.ts): schedules are independent, so J threads go J times
 * as fast on J idle cores.
 * @module
 */
import type { SimParams } from "./world.ts";

/** Splits the seeds over worker threads; resolves with the failing ones. */
export async function runParallel(
  seeds: number[],
  params: Partial<SimParams>,
  threads: number,
): Promise<number[]> {
  const chunks = Array.from(
    { length: threads },
    (_, i) => seeds.filter((_, j) => j % threads === i),
  );
  const results = await Promise.all(
    chunks.map((chunk) =>
      new Promise<number[]>((resolve, reject) => {
        const w = new Worker(new URL("./sim_worker.ts", import.meta.url), {
          type: "module",
        });
        w.onmessage = (e) => resolve(e.data.failed);
        w.onerror = (e) => reject(e.error ?? new Error(e.message));
        w.postMessage({ seeds: chunk, params });
      })
    ),
  );
  return results.flat().sort((a, b) => a - b);
}
