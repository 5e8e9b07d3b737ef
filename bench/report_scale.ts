/** The table rows of bench/scale.ts: the backlog and the node count (issue 16). */
import { notDone, type Row } from "./report.ts";
import { round } from "./stats.ts";
import {
  backlogVerdict,
  boiCpuMs,
  nodeCountVerdict,
  TARGET,
} from "./targets.ts";
import type { ThroughputResult } from "./throughput.ts";

const arrow = (xs: number[], unit = "") =>
  xs.map((x) => `${round(x)}${unit}`).join(" → ");

/** The two rows; none for results from before the rows existed. */
export function scaleRows(
  backlog: ThroughputResult[] | undefined,
  nodeCount:
    | (ThroughputResult & { idle?: { nodes_ms_per_s: number } })[]
    | undefined,
): Row[] {
  const rows: Row[] = [];
  if (backlog && backlog.length >= 2) {
    const [s, l] = [backlog[0], backlog.at(-1)!];
    const v = backlogVerdict(s.cpu, l.cpu);
    rows.push({
      what:
        `backlog: CPU per task with ${s.tasks} vs ${l.tasks} tasks queued at once (ms; noop pool, 3 nodes)`,
      boi: `${arrow([boiCpuMs(s.cpu), boiCpuMs(l.cpu)])}: nodes ${
        arrow([s.cpu.nodes_ms, l.cpu.nodes_ms])
      }, plugins ${arrow([s.cpu.plugins_ms, l.cpu.plugins_ms])}, etcd ${
        arrow([s.cpu.etcd_ms, l.cpu.etcd_ms])
      }`,
      other: `${arrow([s.tasks_per_s, l.tasks_per_s])} tasks/s; machine ${
        arrow([s.cpu.machine_ms, l.cpu.machine_ms])
      } ms/task; node RSS peak ${
        arrow([s.node_rss_peak_mib, l.node_rss_peak_mib])
      } MiB${notDone(s)}${notDone(l)}`,
      target: `≤ ${TARGET.backlogRatio}× (nodes + plugins + etcd)`,
      met: v.met,
      note: `${round(v.ratio)}×`,
    });
  }
  if (nodeCount && nodeCount.length >= 2) {
    const v = nodeCountVerdict(nodeCount);
    const ev = nodeCount.map((r) => r.watch_events_per_node_per_task);
    rows.push({
      what: `node count: total node CPU per task on ${
        nodeCount.map((r) => r.nodes).join(" / ")
      } nodes (ms; ${nodeCount[0].tasks} tasks, noop pool)`,
      boi: nodeCount.map((r) => round(r.cpu.nodes_ms)).join(" / "),
      other: `watch events per node per task ${
        ev.map((x) => x === null ? "n/a" : round(x)).join(" / ")
      }; ${nodeCount.map((r) => round(r.tasks_per_s)).join(" / ")} tasks/s${
        nodeCount.every((r) => r.idle)
          ? `; idle, all nodes: ${
            nodeCount.map((r) => round(r.idle!.nodes_ms_per_s)).join(" / ")
          } ms CPU/s`
          : ""
      }${nodeCount.map(notDone).join("")}`,
      target:
        `${TARGET.nodeCountTo} nodes ≤ ${TARGET.nodeCpuRatio}× ${TARGET.nodeCountFrom} nodes`,
      met: v.met,
      note: v.met === null
        ? `not judged: ${nodeCount.at(-1)!.nodes} vs ${
          nodeCount[0].nodes
        } nodes ${
          round(v.ratio)
        }× (${TARGET.nodeCountTo} nodes in the full run only)`
        : `${round(v.ratio)}×`,
    });
  }
  return rows;
}
