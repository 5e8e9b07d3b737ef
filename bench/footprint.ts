/** Footprint: node memory at rest, and how long the CLI takes from exec to exit. */
import { cli, type EtcdTarget } from "../tests/harness/mod.ts";
import type { Cluster } from "./cluster.ts";
import { rssMiB } from "./rss.ts";
import { percentile } from "./stats.ts";

/** Largest RSS (MiB) among the cluster's node processes right now. */
export function nodeRssMiB(cluster: Cluster): number {
  return Math.max(...cluster.nodes.map((n) => rssMiB(n.pid) ?? 0));
}

/** Median wall time of `runs` CLI invocations of `args` (ms), exec to exit. */
export async function cliColdStart(
  etcd: EtcdTarget,
  args: string[],
  runs: number,
): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const res = await cli(etcd, args);
    samples.push(performance.now() - t0);
    if (res.code !== 0) throw new Error(`bench: cli failed\n${res.explain()}`);
  }
  return percentile(samples, 50);
}
