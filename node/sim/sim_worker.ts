/** A worker thread of `deno task sim`: runs the seeds it is sent and answers with the failures. */
import { runSchedule } from "./schedule.ts";
import type { SimParams } from "./world.ts";

interface Job {
  seeds: number[];
  params: Partial<SimParams>;
}

const scope = self as unknown as {
  onmessage: (e: MessageEvent<Job>) => void;
  postMessage(v: { failed: number[] }): void;
  close(): void;
};

scope.onmessage = (e) => {
  const failed: number[] = [];
  for (const seed of e.data.seeds) {
    if (!runSchedule(seed, e.data.params).ok) failed.push(seed);
  }
  scope.postMessage({ failed });
  scope.close();
};
