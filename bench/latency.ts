/**
 * Dispatch→started on an idle cluster: single-task specs written one after
 * another through the CLI's own write path (parse, then the create txn), so
 * the figure is the dispatcher's, not the CLI process's start-up. The first
 * dispatches on a fresh cluster are left out of the percentiles and kept
 * apart (`warmup_ms`): a node's first task pays V8's lazy compilation of the
 * claim, Prepare and Spawn paths in the node and both plugins (40-470 ms
 * measured, once per node), which is start-up, not idle latency.
 */
import { connectEtcd } from "../node/etcd_client.ts";
import { Keys } from "../node/keys.ts";
import { parseSpec } from "../node/spec.ts";
import { randomSuffix, writeSpec } from "../cli/dispatch_write.ts";
import { Store } from "../cli/store.ts";
import type { Cluster } from "./cluster.ts";
import { percentile } from "./stats.ts";
import { TaskWatch } from "./task_watch.ts";

/** Options of {@linkcode dispatchLatency}. */
export interface LatencyOptions {
  /** Single-task dispatches, one at a time, counted in the percentiles. */
  dispatches: number;
  /**
   * Dispatches made first and not counted (HRW spreads them over the nodes:
   * 10 give each of 3 nodes its first task with near certainty).
   * @default 10
   */
  warmup?: number;
  /** @default 30000 */
  timeoutMs?: number;
}

/** p50/p99 of `started_at - dispatched_at` over `dispatches` one-task specs, after the warm-up. */
export async function dispatchLatency(
  cluster: Cluster,
  opts: LatencyOptions,
): Promise<
  { samples_ms: number[]; warmup_ms: number[]; p50_ms: number; p99_ms: number }
> {
  const watch = await TaskWatch.start(cluster.client());
  const endpoints = cluster.etcd.endpoint.split(",");
  const client = connectEtcd(endpoints, { failFast: true });
  const store = new Store(client, endpoints, () => {});
  const keys = new Keys("/boi/");
  const samples: number[] = [];
  const warmup = opts.warmup ?? 10;
  try {
    for (let i = 0; i < warmup + opts.dispatches; i++) {
      const parsed = parseSpec(
        "latency.yaml",
        `name: lat${i}\ntasks:\n  - id: t\n    run: ["true"]\n`,
        { now: Date.now(), suffix: randomSuffix(), dispatchedBy: "bench" },
      );
      const res = await writeSpec(store, keys, parsed);
      if (!res.ok) {
        throw new Error(`bench: dispatch ${i} refused: ${res.reason}`);
      }
      const id = parsed.envelopes[0].task_id;
      await watch.until(
        `${id} started`,
        () => (watch.tasks.get(id)?.started_at ?? null) !== null,
        opts.timeoutMs ?? 30_000,
      );
      const t = watch.tasks.get(id)!;
      samples.push(t.started_at! - t.dispatched_at!);
      // Idle cluster: the next dispatch waits for this task to end.
      await watch.until(
        `${id} terminal`,
        () => ["DONE", "FAILED"].includes(watch.tasks.get(id)?.state ?? ""),
        opts.timeoutMs ?? 30_000,
      );
    }
  } finally {
    store.close();
    await watch.close();
  }
  const counted = samples.slice(warmup);
  return {
    samples_ms: counted,
    warmup_ms: samples.slice(0, warmup),
    p50_ms: percentile(counted, 50),
    p99_ms: percentile(counted, 99),
  };
}
