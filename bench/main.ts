/**
 * `deno task bench [--quick] [--readme] [--render]`: boi against etcd's own
 * write limit and against BullMQ, in one run on this machine. Prints a table,
 * writes it with every sample to bench/results/<full|quick>.json and .md, and
 * with `--readme` puts the table into README.md ("How fast", between its
 * bench markers); `--render` measures nothing and redraws the table from the last
 * results file. No assertion fails the
 * run on a missed target: the table says which targets were met.
 */
import { bullmqEndToEnd, bullmqFailover, bullmqNoop } from "./bullmq.ts";
import { startCluster } from "./cluster.ts";
import { etcdLimit } from "./etcd_limit.ts";
import { failover } from "./failover.ts";
import { cliColdStart, nodeRssMiB } from "./footprint.ts";
import { dispatchLatency } from "./latency.ts";
import { machine } from "./machine.ts";
import { summarize, table } from "./report.ts";
import { percentile } from "./stats.ts";
import { throughput } from "./throughput.ts";
import { hooksEndToEnd } from "./hooks.ts";
import { backlog, nodeCount } from "./scale.ts";
import { CP_WORKERS, E2E_WORKERS, sizes, TTL_S } from "./sizes.ts";

const quick = Deno.args.includes("--quick");
const toReadme = Deno.args.includes("--readme");
const render = Deno.args.includes("--render");
for (const a of Deno.args) {
  if (!["--quick", "--readme", "--render"].includes(a)) {
    console.error(
      `bench: unknown argument ${a}: expected --quick, --readme or --render`,
    );
    Deno.exit(2);
  }
}
const base = new URL(`./results/${quick ? "quick" : "full"}`, import.meta.url)
  .pathname;

const SIZE = sizes(quick);

const started = Date.now();
const step = (msg: string) =>
  console.error(
    `[bench ${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}`,
  );
const out: Record<string, unknown> = render
  ? await lastResults()
  : await measure();

/** The results file of the last run, without its rendered rows. */
async function lastResults(): Promise<Record<string, unknown>> {
  const { rows: _, ...last } = JSON.parse(
    await Deno.readTextFile(`${base}.json`),
  );
  return last;
}

/** Runs every measurement; returns the results with the machine they ran on. */
async function measure(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    mode: quick ? "quick" : "full",
    date: new Date().toISOString(),
    machine: await machine(),
  };
  const load0 = Deno.loadavg()[0];

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
  // Its peer: BullMQ with a no-op processor, as many workers and slots.
  step(`BullMQ no-op: ${SIZE.cp} jobs, 3 workers × ${CP_WORKERS}`);
  out.bullmq_noop = await bullmqNoop({
    jobs: SIZE.cp,
    workers: 3,
    concurrency: CP_WORKERS,
  });
  // What must not grow: CPU per task with the backlog, node CPU per task
  // with the node count (fresh noop clusters, scale.ts).
  out.backlog = await backlog(SIZE.backlog, step);
  out.node_count = await nodeCount(
    SIZE.nodeCounts,
    SIZE.nodeCountTasks,
    step,
  );
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
  // 7. The same workload with a hooks sink on every node, each tier.
  for (const tier of ["none", "best_effort", "audit"] as const) {
    step(`end to end with a ${tier} hooks sink: ${SIZE.hooks} tasks`);
    out[`hooks_${tier}`] = await hooksEndToEnd(tier, {
      tasks: SIZE.hooks,
      workersMax: E2E_WORKERS,
      leaseTtlS: TTL_S,
    });
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
  out.loadavg = [load0, Deno.loadavg()[0]];

  return out;
}

const rows = summarize(out, TTL_S);
const md = table(rows, out);
console.log(md);
await Deno.mkdir(new URL("./results", import.meta.url).pathname, {
  recursive: true,
});
await Deno.writeTextFile(
  `${base}.json`,
  JSON.stringify({ ...out, rows }, null, 2) + "\n",
);
await Deno.writeTextFile(`${base}.md`, md);
step(`wrote ${base}.json and ${base}.md`);
const written = [`${base}.md`];
if (toReadme) {
  const readme = new URL("../README.md", import.meta.url).pathname;
  const text = await Deno.readTextFile(readme);
  const start = "<!-- bench:start -->";
  const end = "<!-- bench:end -->";
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) {
    console.error(
      `bench: README.md has no ${start} … ${end} block to replace`,
    );
    Deno.exit(1);
  }
  await Deno.writeTextFile(
    readme,
    text.slice(0, i + start.length) + "\n" + md + text.slice(j),
  );
  step("README.md table updated");
  written.push(readme);
}
// The repo's formatter owns Markdown layout (wrapping, table padding).
await new Deno.Command(Deno.execPath(), {
  args: ["fmt", "-q", ...written],
  stdout: "null",
}).output();
