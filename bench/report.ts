/** The bench's table: Markdown, for the terminal and docs/operations.md alike. */
import { round } from "./stats.ts";

/** One line of the table. */
export interface Row {
  what: string;
  boi: string;
  /** The peer or the limit it is compared with. */
  other: string;
  target: string;
  /** null: no target. */
  met: boolean | null;
  note?: string;
}

/** Markdown table plus the machine and run it came from. */
export function table(rows: Row[], run: Record<string, unknown>): string {
  // deno-lint-ignore no-explicit-any
  const m = run.machine as any;
  const lines = [
    `Run ${run.date} (${run.mode}, ${
      Math.round(run.seconds as number)
    } s) on ${m.summary}.`,
    "",
    "| measure | boi | compared with | target | met |",
    "|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.what} | ${r.boi} | ${r.other} | ${r.target} | ${
        r.met === null
          ? ""
          : `${r.met ? "yes" : "**no**"}${r.note ? ` (${r.note})` : ""}`
      } |`
    ),
  ];
  return lines.join("\n") + "\n";
}

/** The table rows: measured value, comparison, target, and whether it was met. */
export function summarize(o: Record<string, unknown>, ttlS: number): Row[] {
  // deno-lint-ignore no-explicit-any
  const r = o as any;
  const W = r.etcd_limit.txn_per_s;
  const cp = r.control_plane;
  const wk = W / cp.k;
  const e2e = r.end_to_end;
  const bull = r.bullmq_end_to_end;
  const fo = r.failover;
  const bfo = r.bullmq_failover;
  const ttlMs = ttlS * 1000;
  return [
    {
      what: "etcd limit W (create-if-absent txn/s, 64 in flight)",
      boi: `${round(W)}`,
      other: "",
      target: "",
      met: null,
    },
    {
      what: `control plane: ${cp.tasks} tasks, noop pool (tasks/s)`,
      boi: `${round(cp.tasks_per_s)}`,
      other: `k = ${round(cp.k)} rev/task; W/k = ${round(wk)}`,
      target: "≥ 1,000 and ≥ 60 % of W/k",
      met: cp.tasks_per_s >= 1000 && cp.tasks_per_s >= 0.6 * wk,
      note: `${round((100 * cp.tasks_per_s) / wk)} % of W/k`,
    },
    cpuRow("control plane", cp.cpu),
    {
      what: `end to end: ${e2e.tasks} × \`true\` (tasks/s)`,
      boi: `${round(e2e.tasks_per_s)}`,
      other: `BullMQ ${round(bull.tasks_per_s)}${
        bull.cpu_machine_ms === undefined
          ? ""
          : ` (${round(bull.cpu_machine_ms)} ms CPU per job on the machine)`
      }`,
      target: "≥ 1.0× BullMQ",
      met: e2e.tasks_per_s >= bull.tasks_per_s,
      note: `${round(e2e.tasks_per_s / bull.tasks_per_s)}×`,
    },
    cpuRow("end to end", e2e.cpu),
    ...hooksRows(r.hooks_none, r.hooks_best_effort, r.hooks_audit),
    {
      what:
        `dispatch→started, idle (${r.latency.samples_ms.length} dispatches)`,
      boi: `p50 ${round(r.latency.p50_ms)} ms, p99 ${
        round(r.latency.p99_ms)
      } ms`,
      other: "",
      target: "p50 ≤ 15 ms, p99 ≤ 50 ms",
      met: r.latency.p50_ms <= 15 && r.latency.p99_ms <= 50,
    },
    {
      what:
        `failover: SIGKILL claimant → re-claimed (${fo.samples_ms.length} trials, TTL ${ttlS} s)`,
      boi: `p50 ${round(fo.p50_ms)} ms, p99 ${round(fo.p99_ms)} ms`,
      other: bfo
        ? `BullMQ defaults: p50 ${round(bfo.p50_ms)} ms, p99 ${
          round(bfo.p99_ms)
        } ms`
        : "BullMQ: not run in --quick",
      target: `p99 ≤ ${ttlMs + 1000} ms`,
      met: fo.p99_ms <= ttlMs + 1000,
    },
    {
      what: "node RSS idle / under load (MiB)",
      boi: `${round(r.node_rss_idle_mib)} / ${
        round(Math.max(cp.node_rss_peak_mib, e2e.node_rss_peak_mib))
      }`,
      other: "",
      target: "≤ 120 under load",
      met: Math.max(cp.node_rss_peak_mib, e2e.node_rss_peak_mib) <= 120,
    },
    {
      what: "CLI cold start: `--version` / `nodes` (ms, median)",
      boi: `${round(r.cli_version_ms)} / ${round(r.cli_nodes_ms)}`,
      other: "",
      target: "≤ 300",
      // Strict: a command that dials etcd counts, not just --version.
      met: r.cli_nodes_ms <= 300,
      note: r.cli_nodes_ms > 300 && r.cli_version_ms <= 300
        ? "`--version` only"
        : undefined,
    },
  ];
}

/** Where a run's CPU went (no target: it explains the rows around it). */
function cpuRow(
  run: string,
  cpu: {
    nodes_ms: number;
    plugins_ms: number;
    etcd_ms: number;
    machine_ms: number;
  } | undefined,
): Row {
  return {
    what: `${run}: CPU per task (ms)`,
    boi: cpu
      ? `${round(cpu.machine_ms)} on the machine: nodes ${
        round(cpu.nodes_ms)
      }, plugins + tasks ${round(cpu.plugins_ms)}, etcd ${round(cpu.etcd_ms)}`
      : "not measured",
    other: "",
    target: "",
    met: null,
  };
}

/** End to end with a hooks sink of each tier, against the same run without one. */
// deno-lint-ignore no-explicit-any
function hooksRows(none: any, be: any, audit: any): Row[] {
  if (!none || !be || !audit) return []; // results from before this row existed
  return [
    {
      what:
        `end to end with a hooks sink on every node: ${be.tasks} × \`true\` (tasks/s)`,
      boi: `best_effort ${round(be.tasks_per_s)}, audit ${
        round(audit.tasks_per_s)
      }`,
      other: `no sink ${round(none.tasks_per_s)} (each on a fresh cluster)`,
      target: "best_effort ≥ 90 % of no sink",
      met: be.tasks_per_s >= 0.9 * none.tasks_per_s,
      note: `${round((100 * be.tasks_per_s) / none.tasks_per_s)} % / ${
        round((100 * audit.tasks_per_s) / none.tasks_per_s)
      } %`,
    },
  ];
}
