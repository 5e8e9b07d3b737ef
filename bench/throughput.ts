/**
 * Throughput runs: dispatch one spec of N independent tasks through the real
 * CLI and time it until every task is terminal, as seen by an etcd watch.
 */
import { cli } from "../tests/harness/mod.ts";
import type { Cluster } from "./cluster.ts";
import { cpuMeter, type CpuPerTask } from "./cpu.ts";
import { rssPeak } from "./rss.ts";
import { writeSpecFile } from "./spec_file.ts";
import { TaskWatch } from "./task_watch.ts";

/** What one throughput run measured. */
export interface ThroughputResult {
  tasks: number;
  /** From starting `boi dispatch` to the last task terminal. */
  seconds: number;
  tasks_per_s: number;
  /** Revisions (committed write transactions) during the run. */
  revisions: number;
  /** Revisions per task, dispatch and node bookkeeping included. */
  k: number;
  /** Tasks that did not end DONE (must be 0). */
  not_done: number;
  /** Largest node RSS seen during the run (MiB). */
  node_rss_peak_mib: number;
  /** CPU per task by process class, from /proc. */
  cpu: CpuPerTask;
}

/** Options of {@linkcode throughput}. */
export interface ThroughputOptions {
  tasks: number;
  /**
   * The command every task runs: argv (the program itself, as the BullMQ
   * peer spawns it) or a shell line.
   * @default ["true"]
   */
  run?: string | string[];
  /** Spec name. @default "bench" */
  name?: string;
  /** @default 600000 */
  timeoutMs?: number;
}

/** Dispatches `tasks` tasks on `cluster` and waits until all are terminal. */
export async function throughput(
  cluster: Cluster,
  opts: ThroughputOptions,
): Promise<ThroughputResult> {
  const n = opts.tasks;
  const file = await writeSpecFile(
    cluster.dir,
    opts.name ?? "bench",
    n,
    opts.run ?? ["true"],
  );
  const watch = await TaskWatch.start(cluster.client());
  const stopRss = rssPeak(cluster.nodes.map((x) => x.pid));
  try {
    const rev0 = await cluster.etcd.revision();
    const cpu = cpuMeter(
      cluster.nodes.map((x) => x.pid),
      cluster.etcd.members[0]?.pid ?? null,
    );
    const t0 = performance.now();
    const done = watch.until(
      `${n} tasks terminal`,
      () => watch.terminal >= n,
      opts.timeoutMs ?? 600_000,
    );
    const res = await cli(cluster.etcd, ["dispatch", file, "--json"], {
      timeoutMs: 120_000,
    });
    if (res.code !== 0) {
      throw new Error(`bench: dispatch failed\n${res.explain()}`);
    }
    await done;
    const seconds = (performance.now() - t0) / 1000;
    const cpuPerTask = cpu(n);
    const revisions = (await cluster.etcd.revision()) - rev0;
    const notDone = [...watch.tasks.values()].filter((t) => t.state !== "DONE")
      .length;
    return {
      tasks: n,
      seconds,
      tasks_per_s: n / seconds,
      revisions,
      k: revisions / n,
      not_done: notDone,
      node_rss_peak_mib: stopRss(),
      cpu: cpuPerTask,
    };
  } finally {
    stopRss();
    await watch.close();
  }
}
