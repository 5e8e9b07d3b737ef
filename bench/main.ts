/**
 * `deno task bench [--quick] [--readme]`: boi against etcd's own write limit
 * and against BullMQ, in one run on this machine. Prints a table, writes it
 * with every sample to bench/results/<full|quick>.json and .md, and with
 * `--readme` puts the table into README.md. No assertion fails the run on a
 * missed target: the table says which targets were met.
 */
import { bullmqEndToEnd, bullmqFailover } from "./bullmq.ts";
import { startCluster } from "./cluster.ts";
import { etcdLimit } from "./etcd_limit.ts";
import { failover } from "./failover.ts";
import { cliColdStart, nodeRssMiB } from "./footprint.ts";
import { dispatchLatency } from "./latency.ts";
import { machine } from "./machine.ts";
import { type Row, table } from "./report.ts";
import { percentile, round } from "./stats.ts";
import { throughput } from "./throughput.ts";

const quick = Deno.args.includes("--quick");
const toReadme = Deno.args.includes("--readme");
for (const a of Deno.args) {
  if (!["--quick", "--readme"].includes(a)) {
    console.error(`bench: unknown argument ${a}: expected --quick or --readme`);
    Deno.exit(2);
  }
}

/** Sizes: the full run, and a smoke run under 2 minutes for CI. */
const SIZE = quick
  ? { wMs: 1000, cp: 500, e2e: 200, lat: 20, fo: 2, bullFo: 0, cliRuns: 3 }
  : {
    wMs: 3000,
    cp: 5000,
    e2e: 2000,
    lat: 100,
    fo: 20,
    bullFo: 20,
    cliRuns: 5,
  };
/** Per node in the control-plane run: the noop pool finishes at once, so slots are cheap. */
const CP_WORKERS = 128;
/** The default, and BullMQ gets the same: 3 processes × 4. */
const E2E_WORKERS = 4;
const TTL_S = 2;

const started = Date.now();
const step = (msg: string) =>
  console.error(
    `[bench ${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}`,
  );
const out: Record<string, unknown> = {
  mode: quick ? "quick" : "full",
  date: new Date().toISOString(),
  machine: await machine(),
};

// 1–2. etcd's limit, then the control plane on the same etcd.
{
  step("control plane: 3 nodes, noop pool");
  await using c = await startCluster({
    pool: "noop",
    workersMax: CP_WORKERS,
    leaseTtlS: TTL_S,
  });
  await new Promise((r) => setTimeout(r, 2000)); // let start-up settle
  out.node_rss_idle_mib = nodeRssMiB(c);
  step(`etcd limit W (${SIZE.wMs} ms)`);
  out.etcd_limit = await etcdLimit(c.client(), { durationMs: SIZE.wMs });
  step(`control plane: ${SIZE.cp} tasks`);
  out.control_plane = await throughput(c, { tasks: SIZE.cp, name: "cp" });
}
// 3–6. Real processes: latency on the idle cluster, then load, failover, CLI.
{
  step("end to end: 3 nodes, local pool");
  await using c = await startCluster({
    pool: "local",
    workersMax: E2E_WORKERS,
    leaseTtlS: TTL_S,
  });
  step(`latency: ${SIZE.lat} single-task dispatches`);
  out.latency = await dispatchLatency(c, { dispatches: SIZE.lat });
  step(`end to end: ${SIZE.e2e} tasks running true`);
  out.end_to_end = await throughput(c, { tasks: SIZE.e2e, name: "e2e" });
  step("CLI cold start");
  out.cli_version_ms = await cliColdStart(null, ["--version"], SIZE.cliRuns);
  out.cli_nodes_ms = await cliColdStart(c.etcd, ["nodes"], SIZE.cliRuns);
  step(`failover: ${SIZE.fo} trials, lease TTL ${TTL_S} s`);
  out.failover = await failover(c, { trials: SIZE.fo });
}
// The peer: BullMQ on a private redis, same machine, same workload.
step(`BullMQ end to end: ${SIZE.e2e} jobs`);
out.bullmq_end_to_end = await bullmqEndToEnd({
  jobs: SIZE.e2e,
  workers: 3,
  concurrency: E2E_WORKERS,
});
if (SIZE.bullFo > 0) {
  step(`BullMQ failover: ${SIZE.bullFo} trials (its defaults: 30–60 s each)`);
  const { samples_ms } = await bullmqFailover({ trials: SIZE.bullFo });
  out.bullmq_failover = {
    samples_ms,
    p50_ms: percentile(samples_ms, 50),
    p99_ms: percentile(samples_ms, 99),
  };
}
out.seconds = (Date.now() - started) / 1000;

const rows = summarize(out);
const md = table(rows, out);
console.log(md);
const base = new URL(`./results/${quick ? "quick" : "full"}`, import.meta.url)
  .pathname;
await Deno.mkdir(new URL("./results", import.meta.url).pathname, {
  recursive: true,
});
await Deno.writeTextFile(
  `${base}.json`,
  JSON.stringify({ ...out, rows }, null, 2) + "\n",
);
await Deno.writeTextFile(`${base}.md`, md);
step(`wrote ${base}.json and ${base}.md`);
if (toReadme) {
  const readme = new URL("../README.md", import.meta.url).pathname;
  const text = await Deno.readTextFile(readme);
  const start = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) {
    console.error(`bench: README.md has no ${start} … ${end} block to replace`);
    Deno.exit(1);
  }
  await Deno.writeTextFile(
    readme,
    text.slice(0, i + start.length) + "\n" + md + text.slice(j),
  );
  step("README.md table updated");
}

/** The table rows: measured value, comparison, target, and whether it was met. */
function summarize(o: Record<string, unknown>): Row[] {
  // deno-lint-ignore no-explicit-any
  const r = o as any;
  const W = r.etcd_limit.txn_per_s;
  const cp = r.control_plane;
  const wk = W / cp.k;
  const e2e = r.end_to_end;
  const bull = r.bullmq_end_to_end;
  const fo = r.failover;
  const bfo = r.bullmq_failover;
  const ttlMs = TTL_S * 1000;
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
    {
      what: `end to end: ${e2e.tasks} × \`true\` (tasks/s)`,
      boi: `${round(e2e.tasks_per_s)}`,
      other: `BullMQ ${round(bull.tasks_per_s)}`,
      target: "≥ 1.0× BullMQ",
      met: e2e.tasks_per_s >= bull.tasks_per_s,
      note: `${round(e2e.tasks_per_s / bull.tasks_per_s)}×`,
    },
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
        `failover: SIGKILL claimant → re-claimed (${fo.samples_ms.length} trials, TTL ${TTL_S} s)`,
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
      met: r.cli_version_ms <= 300,
    },
  ];
}
