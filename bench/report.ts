/** The bench's table: Markdown, for the terminal and the README alike. */
import { round } from "./stats.ts";
import { scaleRows } from "./report_scale.ts";
import {
  boiCpuMs,
  cliMet,
  controlPlaneMet,
  endToEndVerdict,
  failoverMet,
  latencyMet,
  rssMet,
  TARGET,
} from "./targets.ts";

/** One line of the table. */
export interface Row {
  what: string;
  boi: string;
  /** The peer or the limit it is compared with. */
  other: string;
  target: string;
  /** null: no target, or not judged in this run (then `note` says why). */
  met: boolean | null;
  note?: string;
}

/** Markdown table plus the machine and run it came from. */
export function table(rows: Row[], run: Record<string, unknown>): string {
  // deno-lint-ignore no-explicit-any
  const m = run.machine as any;
  const load = run.loadavg as number[] | undefined;
  const lines = [
    `Run ${run.date} (${run.mode}, ${
      Math.round(run.seconds as number)
    } s) on ${m.summary}.${
      load
        ? ` Load average (1 min) at start / end: ${
          load.map(round).join(" / ")
        }.`
        : ""
    }`,
    "",
    "| measure | boi | compared with | target | met |",
    "|---|---|---|---|---|",
    ...rows.map((r) =>
      `| ${r.what} | ${r.boi} | ${r.other} | ${r.target} | ${
        r.met === null
          ? (r.note ?? "")
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
  const e2e = r.end_to_end;
  const bull = r.bullmq_end_to_end;
  const fo = r.failover;
  const bfo = r.bullmq_failover;
  const ttlMs = ttlS * 1000;
  const e2eV = endToEndVerdict(e2e.tasks_per_s, bull.tasks_per_s);
  const rssLoad = Math.max(cp.node_rss_peak_mib, e2e.node_rss_peak_mib);
  return [
    {
      what: "etcd limit W (create-if-absent txn/s, 64 in flight)",
      boi: `${round(W)}`,
      other: "",
      target: "",
      met: null,
    },
    ...controlPlaneRows(cp, r.bullmq_noop, W),
    ...scaleRows(r.backlog, r.node_count),
    {
      what: `end to end: ${e2e.tasks} × \`true\` (tasks/s)`,
      boi: `${round(e2e.tasks_per_s)}`,
      other: `BullMQ ${round(bull.tasks_per_s)}${peerCpu(bull)}${notDone(e2e)}`,
      target: `≥ ${TARGET.e2eVsBullmq.toFixed(1)}× BullMQ`,
      met: e2eV.met,
      note: `${round(e2eV.ratio)}×`,
    },
    cpuRow("end to end", e2e.cpu),
    ...hooksRows(r.hooks_none, r.hooks_best_effort, r.hooks_audit),
    {
      what: `dispatch→started, idle (${r.latency.samples_ms.length} dispatches${
        warmupNote(r.latency.warmup_ms)
      })`,
      boi: `p50 ${round(r.latency.p50_ms)} ms, p99 ${
        round(r.latency.p99_ms)
      } ms`,
      other: "",
      target:
        `p50 ≤ ${TARGET.latencyP50Ms} ms, p99 ≤ ${TARGET.latencyP99Ms} ms`,
      met: latencyMet(r.latency.p50_ms, r.latency.p99_ms),
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
      target: `p99 ≤ ${ttlMs + TARGET.failoverSlackMs} ms (TTL + 1 s)`,
      met: failoverMet(fo.p99_ms, ttlS),
    },
    {
      what:
        "node RSS idle / under load (MiB; load: control plane and end to end)",
      boi: `${round(r.node_rss_idle_mib)} / ${round(rssLoad)}`,
      other: "",
      target: `≤ ${TARGET.rssMiB} under load`,
      met: rssMet(rssLoad),
    },
    {
      what: "CLI cold start: `--version` / `nodes` (ms, median)",
      boi: `${round(r.cli_version_ms)} / ${round(r.cli_nodes_ms)}`,
      other: "",
      target: `\`nodes\` ≤ ${TARGET.cliMs}`,
      // Strict: a command that dials etcd counts, not just --version.
      met: cliMet(r.cli_nodes_ms),
    },
  ];
}

/**
 * The control plane against its peer (BullMQ with a no-op processor) and
 * against etcd's W. k counts key writes, W's unit (one key per txn): group
 * commit folds dozens of them into one revision, so W/k is what boi would
 * reach if every write went alone, not a ceiling of the batched path.
 */
// deno-lint-ignore no-explicit-any
function controlPlaneRows(cp: any, bn: any, W: number): Row[] {
  const k = cp.revisions_per_task === undefined
    ? `k = ${round(cp.k)} rev/task (old results: revisions)`
    : `k = ${round(cp.k)} key writes/task in ${
      round(cp.revisions_per_task)
    } revisions/task; W/k = ${round(W / cp.k)}`;
  return [
    {
      what: `control plane: ${cp.tasks} tasks, noop pool, 3 nodes (tasks/s)`,
      boi: `${round(cp.tasks_per_s)}`,
      other: `${
        bn
          ? `BullMQ no-op ${
            round(bn.tasks_per_s)
          } jobs/s (${bn.workers} × ${bn.concurrency}); `
          : ""
      }${k}${notDone(cp)}`,
      target: `≥ ${TARGET.cpTasksPerS.toLocaleString("en")}; ratio to BullMQ`,
      met: controlPlaneMet(cp.tasks_per_s),
      note: bn ? `${round(cp.tasks_per_s / bn.tasks_per_s)}× BullMQ` : "",
    },
    {
      ...cpuRow("control plane", cp.cpu),
      other: bn?.cpu && cp.cpu
        ? `BullMQ no-op: ${
          peerCpuCell(bn.cpu)
        } per job; boi's processes ÷ BullMQ's: ${
          round(boiCpuMs(cp.cpu) / (bn.cpu.workers_ms + bn.cpu.redis_ms))
        }×`
        : "",
    },
  ];
}

/**
 * "; N not DONE (FAILED n)" when a run's tasks did not all end DONE (a lease
 * lost under load re-runs or fails them): its figures then include that work.
 */
// deno-lint-ignore no-explicit-any
export function notDone(r: any): string {
  if (!r?.not_done) return "";
  const states = Object.entries(r.end_states ?? {})
    .filter(([k]) => k !== "DONE").map(([k, v]) => `${k} ${v}`).join(", ");
  return `; **${r.not_done} not DONE**${states ? ` (${states})` : ""}`;
}

/** A BullMQ run's CPU per job by process (ms). */
function peerCpuCell(
  c: { machine_ms: number; workers_ms: number; redis_ms: number },
): string {
  return `${round(c.machine_ms)} on the machine: workers ${
    round(c.workers_ms)
  }, redis ${round(c.redis_ms)}`;
}

/** The end-to-end peer's CPU per job, for the "compared with" cell. */
// deno-lint-ignore no-explicit-any
function peerCpu(bull: any): string {
  if (bull.cpu) return ` (${peerCpuCell(bull.cpu)} ms CPU per job)`;
  return bull.cpu_machine_ms === undefined
    ? ""
    : ` (${round(bull.cpu_machine_ms)} ms CPU per job on the machine)`;
}

/** Where a run's CPU went (no target: it explains the rows around it). */
export function cpuRow(
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
      target: `best_effort ≥ ${100 * TARGET.hooksBestEffort} % of no sink`,
      met: be.tasks_per_s >= TARGET.hooksBestEffort * none.tasks_per_s,
      note: `${round((100 * be.tasks_per_s) / none.tasks_per_s)} % / ${
        round((100 * audit.tasks_per_s) / none.tasks_per_s)
      } %`,
    },
  ];
}

/** The warm-up dispatches left out of the latency percentiles (bench/latency.ts), and the slowest. */
function warmupNote(warmup: number[] | undefined): string {
  if (!warmup || warmup.length === 0) return ""; // results from before the warm-up
  return ` after ${warmup.length} warm-up ones, the slowest ${
    round(Math.max(...warmup))
  } ms`;
}
