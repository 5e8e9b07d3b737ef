/**
 * One row of the bench at a time, with the sizes of `deno task bench`
 * (`--quick` for the smoke sizes): for measuring a change without the whole
 * run. Prints the row's results as JSON and writes them to
 * bench/scratch/row-<name>-<quick|full>.json (ignored by git).
 *
 * Run: `deno run -A bench/row.ts <etcd_limit|control_plane|bullmq_noop|backlog|node_count|latency|e2e> [--quick]`
 * @module
 */
import { startEtcd } from "../tests/harness/mod.ts";
import { bullmqNoop } from "./bullmq.ts";
import { etcdLimit } from "./etcd_limit.ts";
import { backlog, nodeCount, noopRun } from "./scale.ts";
import { startCluster } from "./cluster.ts";
import { dispatchLatency } from "./latency.ts";
import { throughput } from "./throughput.ts";
import { etcdCallMeter, roleMeter } from "./proc_cpu.ts";
import { CP_WORKERS, E2E_WORKERS, sizes, TTL_S } from "./sizes.ts";

const quick = Deno.args.includes("--quick");
const name = Deno.args.find((a) => !a.startsWith("--"));
const size = sizes(quick);
const started = Date.now();
const step = (msg: string) =>
  console.error(`[row ${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}`);

const rows: Record<string, () => Promise<unknown>> = {
  etcd_limit: async () => {
    await using etcd = await startEtcd({ name: "bench" });
    return await etcdLimit(etcd.client(), { durationMs: size.wMs });
  },
  control_plane: () => noopRun(3, size.cp, "cp"),
  bullmq_noop: () =>
    bullmqNoop({ jobs: size.cp, workers: 3, concurrency: CP_WORKERS }),
  backlog: () => backlog(size.backlog, step),
  node_count: () => nodeCount(size.nodeCounts, size.nodeCountTasks, step),
  // As bench/main.ts measures it: a fresh 3-node cluster, local pool.
  latency: async () => {
    await using c = await startCluster({
      pool: "local",
      workersMax: E2E_WORKERS,
      leaseTtlS: TTL_S,
    });
    return await dispatchLatency(c, { dispatches: size.lat });
  },
  // bench/main.ts's end to end (2,000 × `true`, local pool, 3 nodes), alone:
  // a fresh cluster, settled, without the latency run before it; with the
  // CPU per process role (node, each plugin, the spawner and its tasks) and
  // etcd's RPCs per task, over the dispatch and the run.
  e2e: async () => {
    await using c = await startCluster({
      pool: "local",
      workersMax: E2E_WORKERS,
      leaseTtlS: TTL_S,
    });
    await new Promise((r) => setTimeout(r, 2000)); // let start-up settle
    const roles = roleMeter(
      c.nodes.map((n) => n.pid),
      c.etcd.members[0]?.pid ?? null,
    );
    const calls = await etcdCallMeter(c.etcd.endpoint.split(",")[0]);
    const run = await throughput(c, { tasks: size.e2e, name: "e2e" });
    return {
      ...run,
      cpu_by_role: roles(size.e2e),
      etcd_calls_per_task: await calls(size.e2e),
    };
  },
};
const run = name === undefined ? undefined : rows[name];
if (run === undefined) {
  console.error(
    `bench/row: the row must be one of ${Object.keys(rows).join(", ")}: got ${
      name ?? "nothing"
    }`,
  );
  Deno.exit(2);
}
const load0 = Deno.loadavg();
const result = await run();
const out = {
  row: name,
  mode: quick ? "quick" : "full",
  date: new Date().toISOString(),
  loadavg_before: load0,
  loadavg_after: Deno.loadavg(),
  seconds: (Date.now() - started) / 1000,
  result,
};
const dir = new URL("./scratch/", import.meta.url).pathname;
await Deno.mkdir(dir, { recursive: true });
await Deno.writeTextFile(
  `${dir}row-${name}-${out.mode}.json`,
  JSON.stringify(out, null, 2) + "\n",
);
console.log(JSON.stringify(out));
