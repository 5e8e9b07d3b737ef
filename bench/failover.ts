/**
 * Failover: SIGKILL the node that runs a task and time kill → the task
 * claimed again by another node (seen on an etcd watch), trial after trial.
 */
import type { Cluster } from "./cluster.ts";
import { percentile } from "./stats.ts";
import { TaskWatch } from "./task_watch.ts";
import { writeSpecFile } from "./spec_file.ts";
import { cli } from "../tests/harness/mod.ts";

/** Options of {@linkcode failover}. */
export interface FailoverOptions {
  trials: number;
  /** @default 30000 */
  timeoutMs?: number;
}

/**
 * Each trial dispatches one `sleep 3` task, waits for RUNNING, SIGKILLs its
 * node, waits for a new claim by another node, then restarts the killed node
 * and waits for the task to end, so every trial starts from three idle nodes.
 */
export async function failover(
  cluster: Cluster,
  opts: FailoverOptions,
): Promise<{ samples_ms: number[]; p50_ms: number; p99_ms: number }> {
  const watch = await TaskWatch.start(cluster.client());
  const timeout = opts.timeoutMs ?? 30_000;
  const samples: number[] = [];
  const reclaimedAt = new Map<string, number>();
  let victimOf = new Map<string, { node: string; fence: number }>();
  watch.onEnvelope((id, t) => {
    const v = victimOf.get(id);
    if (
      v && !reclaimedAt.has(id) && t.state === "CLAIMED" &&
      t.claimant_node_id !== null && t.claimant_node_id !== v.node
    ) reclaimedAt.set(id, Date.now());
  });
  try {
    for (let i = 0; i < opts.trials; i++) {
      const file = await writeSpecFile(
        cluster.dir,
        `fo${i}`,
        1,
        "sleep 3",
        "max_attempts: 5",
      );
      const res = await cli(cluster.etcd, ["dispatch", file, "--json"]);
      if (res.code !== 0) {
        throw new Error(`bench: dispatch failed\n${res.explain()}`);
      }
      const specId = res.json<{ spec_id: string }>().spec_id;
      const id = `${specId}.t0`;
      await watch.until(
        `${id} RUNNING`,
        () => watch.tasks.get(id)?.state === "RUNNING",
        timeout,
      );
      const t = watch.tasks.get(id)!;
      const node = cluster.nodes.find((n) => n.nodeId === t.claimant_node_id);
      if (!node) {
        throw new Error(
          `bench: ${id} runs on unknown node ${t.claimant_node_id}`,
        );
      }
      victimOf = new Map([[id, { node: node.nodeId, fence: t.fence ?? 0 }]]);
      const killedAt = Date.now();
      node.kill("SIGKILL");
      await watch.until(`${id} re-claimed`, () => reclaimedAt.has(id), timeout);
      samples.push(reclaimedAt.get(id)! - killedAt);
      await node.exited;
      await node.restart();
      await watch.until(
        `${id} DONE`,
        () => watch.tasks.get(id)?.state === "DONE",
        timeout,
      );
    }
  } finally {
    await watch.close();
  }
  return {
    samples_ms: samples,
    p50_ms: percentile(samples, 50),
    p99_ms: percentile(samples, 99),
  };
}
