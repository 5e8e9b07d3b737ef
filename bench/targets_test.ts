/** The met/not-met rules of issue 16's rows, and the table they render into. */
import assert from "node:assert/strict";
import { summarize, table } from "./report.ts";
import {
  backlogVerdict,
  boiCpuMs,
  cliMet,
  controlPlaneMet,
  endToEndVerdict,
  failoverMet,
  latencyMet,
  nodeCountVerdict,
  rssMet,
} from "./targets.ts";

const cpu = (nodes_ms: number, plugins_ms = 1, etcd_ms = 0.5) => ({
  nodes_ms,
  plugins_ms,
  etcd_ms,
  machine_ms: nodes_ms + plugins_ms + etcd_ms + 3,
});

Deno.test("backlog: within 1.2× of boi's own CPU (machine left out) is met", () => {
  assert.equal(boiCpuMs(cpu(2)), 3.5);
  assert.deepEqual(backlogVerdict(cpu(2), cpu(2.7)), {
    ratio: 4.2 / 3.5,
    met: true,
  });
  assert.equal(backlogVerdict(cpu(2), cpu(2.8)).met, false); // 4.3 / 3.5 > 1.2
  // Only the machine grew (other people's load): still met.
  const noisy = { ...cpu(2), machine_ms: 100 };
  assert.equal(backlogVerdict(cpu(2), noisy).met, true);
});

Deno.test("node count: 9 vs 3 nodes' node CPU within 1.5×; unjudged without both", () => {
  const runs = (n3: number, n9: number) => [
    { nodes: 3, cpu: cpu(n3) },
    { nodes: 6, cpu: cpu(100) }, // the middle count does not decide
    { nodes: 9, cpu: cpu(n9) },
  ];
  assert.deepEqual(nodeCountVerdict(runs(2, 3)), { ratio: 1.5, met: true });
  assert.equal(nodeCountVerdict(runs(2, 3.1)).met, false);
  const quick = nodeCountVerdict([{ nodes: 3, cpu: cpu(2) }, {
    nodes: 6,
    cpu: cpu(5),
  }]);
  assert.equal(quick.met, null);
  assert.equal(quick.ratio, 2.5);
});

Deno.test("the other targets at their edges", () => {
  assert.equal(controlPlaneMet(1000), true);
  assert.equal(controlPlaneMet(999.9), false);
  assert.deepEqual(endToEndVerdict(100, 100), { ratio: 1, met: true });
  assert.equal(endToEndVerdict(99, 100).met, false);
  assert.equal(latencyMet(10, 40), true);
  assert.equal(latencyMet(10.1, 40), false);
  assert.equal(latencyMet(10, 40.1), false);
  assert.equal(rssMet(120), true);
  assert.equal(rssMet(120.5), false);
  assert.equal(cliMet(300), true);
  assert.equal(cliMet(301), false);
  assert.equal(failoverMet(3000, 2), true);
  assert.equal(failoverMet(3001, 2), false);
});

/** A results object shaped like bench/main.ts's, with chosen figures. */
function results(full: boolean) {
  const run = (nodes: number, tasks: number, tps: number, nodesMs: number) => ({
    tasks,
    nodes,
    seconds: tasks / tps,
    tasks_per_s: tps,
    revisions: tasks / 10,
    k: 6,
    revisions_per_task: 0.1,
    watch_events_per_node_per_task: 6,
    not_done: 0,
    end_states: { DONE: tasks } as Record<string, number>,
    node_rss_peak_mib: 110,
    cpu: cpu(nodesMs),
  });
  return {
    mode: full ? "full" : "quick",
    date: "2026-12-01T00:00:00.000Z",
    seconds: 100,
    loadavg: [1.234, 2],
    machine: { summary: "test machine" },
    node_rss_idle_mib: 90,
    etcd_limit: { txn_per_s: 3000 },
    control_plane: run(3, 5000, 1200, 2),
    bullmq_noop: {
      jobs: 5000,
      workers: 3,
      concurrency: 128,
      seconds: 2,
      tasks_per_s: 2400,
      cpu: { workers_ms: 0.3, redis_ms: 0.1, machine_ms: 0.6 },
    },
    backlog: [run(3, 500, 1000, 2), run(3, 20000, 900, 3)],
    node_count: full
      ? [run(3, 3000, 900, 2), run(6, 3000, 800, 2.5), run(9, 3000, 700, 2.9)]
      : [run(3, 300, 900, 2), run(6, 300, 800, 2.5)],
    end_to_end: run(3, 2000, 600, 4),
    bullmq_end_to_end: {
      jobs: 2000,
      tasks_per_s: 500,
      cpu: { workers_ms: 3, redis_ms: 0.5, machine_ms: 5 },
    },
    latency: { samples_ms: [5, 9], p50_ms: 5, p99_ms: 9 },
    failover: { samples_ms: [2100, 2400], p50_ms: 2100, p99_ms: 2400 },
    cli_version_ms: 200,
    cli_nodes_ms: 280,
  };
}

Deno.test("the table marks each of issue 16's targets, quick and full from one definition", () => {
  const full = summarize(results(true), 2);
  const by = (rows: typeof full, what: string) => {
    const r = rows.find((x) => x.what.startsWith(what));
    assert.ok(r, `a row starting ${what}: ${rows.map((x) => x.what)}`);
    return r;
  };
  assert.equal(by(full, "control plane: 5000").met, true);
  assert.match(by(full, "control plane: 5000").note!, /^0\.5× BullMQ$/);
  assert.match(by(full, "control plane: 5000").other, /W\/k = 500/);
  // boi 2 + 1 + 0.5 ms against BullMQ's workers 0.3 + redis 0.1.
  assert.match(
    by(full, "control plane: CPU").other,
    /boi's processes ÷ BullMQ's: 8\.75×/,
  );
  assert.equal(by(full, "backlog").met, false); // 4.5 / 3.5 = 1.29
  assert.equal(by(full, "node count").met, true); // 2.9 / 2 = 1.45
  assert.equal(by(full, "end to end: 2000").met, true); // 1.2×
  assert.equal(by(full, "dispatch→started").met, true);
  assert.equal(by(full, "failover").met, true);
  assert.equal(by(full, "node RSS").met, true);
  assert.equal(by(full, "CLI").met, true);
  assert.match(by(full, "dispatch→started").target, /p50 ≤ 10 ms, p99 ≤ 40 ms/);

  const quick = summarize(results(false), 2);
  const nc = by(quick, "node count");
  assert.equal(nc.met, null);
  assert.match(nc.note!, /not judged: 6 vs 3 nodes 1\.25×/);
  const md = table(quick, results(false));
  assert.match(md, /Load average \(1 min\) at start \/ end: 1\.23 \/ 2\./);
  assert.match(md, /\| not judged: 6 vs 3 nodes/);
  assert.match(table(full, results(true)), /\| \*\*no\*\* \(1\.29×\) \|/);
  // A run whose tasks did not all end DONE says so in its row.
  const lost = results(true);
  lost.node_count[2] = {
    ...lost.node_count[2],
    not_done: 172,
    end_states: { DONE: 2828, FAILED: 172 },
  };
  assert.match(
    by(summarize(lost, 2), "node count").other,
    /\*\*172 not DONE\*\* \(FAILED 172\)/,
  );
});
