/**
 * End to end with a hooks sink (issue 12): the same workload as the end-to-end
 * row, on a cluster whose nodes each run the reference `hooks_jsonl` plugin
 * in one tier, so the table shows what the event stream costs (best_effort
 * should keep ≥ 90 % of the throughput without a sink; audit fsyncs and
 * waits for acks).
 */
import { stringifyYaml } from "../node/yaml.ts";
import { startCluster } from "./cluster.ts";
import { throughput, type ThroughputResult } from "./throughput.ts";

/** The plugins file of a node with a `hooks_jsonl` sink (reference workspace and pool). */
export function hooksPluginsYaml(tier: "audit" | "best_effort"): string {
  const repo = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
  return stringifyYaml({
    hooks: {
      argv: [
        Deno.execPath(),
        "run",
        "-q",
        "-P=plugin",
        "--allow-net=unix:{socket}",
        `${repo}/plugins/hooks_jsonl.ts`,
      ],
      tier,
    },
  });
}

/**
 * Runs `tasks` × `true` on 3 fresh nodes with a sink of `tier` ("none": no
 * hooks plugin): each tier on a cluster of its own, in the same conditions
 * (a warm cluster that already ran other workloads is not comparable:
 * measured 142 vs 59 tasks/s that way, 77–88 vs 71–78 fresh).
 */
export async function hooksEndToEnd(
  tier: "none" | "audit" | "best_effort",
  o: { tasks: number; workersMax: number; leaseTtlS: number },
): Promise<ThroughputResult & { tier: string }> {
  await using c = await startCluster({
    pool: "local",
    workersMax: o.workersMax,
    leaseTtlS: o.leaseTtlS,
    ...(tier === "none" ? {} : { pluginsYaml: hooksPluginsYaml(tier) }),
  });
  const r = await throughput(c, { tasks: o.tasks, name: `hooks-${tier}` });
  return { ...r, tier };
}
