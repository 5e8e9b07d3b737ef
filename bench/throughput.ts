/**
 * Throughput runs: dispatch N independent tasks through the real CLI (in
 * specs of at most MAX_TASKS, all at once) and time it until every task is
 * terminal, as seen by an etcd watch.
 */
import { cli } from "../tests/harness/mod.ts";
import { MAX_TASKS } from "../node/spec.ts";
import type { Cluster } from "./cluster.ts";
import { cpuMeter, type CpuPerTask } from "./cpu.ts";
import { scrapeCounter } from "./node_scrape.ts";
import { rssPeak } from "./rss.ts";
import { writeSpecFile } from "./spec_file.ts";
import { TaskWatch } from "./task_watch.ts";

/** What one throughput run measured. */
export interface ThroughputResult {
  tasks: number;
  nodes: number;
  /** From starting `boi dispatch` to the last task terminal. */
  seconds: number;
  tasks_per_s: number;
  /** Revisions (committed write requests) during the run. */
  revisions: number;
  /**
   * Key writes (puts and deletes under the prefix, from a watch) per task,
   * dispatch and node bookkeeping included: the unit of W, which commits one
   * key per transaction. Group commit folds many into one revision, so
   * revisions per task can be well below 1 and are no measure of the work.
   */
  k: number;
  /** Revisions per task (etcd write requests that committed). */
  revisions_per_task: number;
  /**
   * Key changes each node's watch delivered, per task (mean over the nodes,
   * from `boi_watch_events_total`); null when the nodes do not expose it.
   */
  watch_events_per_node_per_task: number | null;
  /**
   * Claim transactions that lost the race (compare failed), all nodes, per
   * task (`boi_claim_conflicts_total`): spill-over races grow with the node
   * count. Null when the nodes do not expose it.
   */
  claim_conflicts_per_task: number | null;
  /** Tasks that did not end DONE (must be 0). */
  not_done: number;
  /** Tasks by the state they ended in (DONE, FAILED, …). */
  end_states: Record<string, number>;
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
  /** Spec name (a suffix -1, -2… when split). @default "bench" */
  name?: string;
  /** @default 600000 */
  timeoutMs?: number;
}

const EVENTS = "boi_watch_events_total";
const CONFLICTS = "boi_claim_conflicts_total";

/** Dispatches `tasks` tasks on `cluster` and waits until all are terminal. */
export async function throughput(
  cluster: Cluster,
  opts: ThroughputOptions,
): Promise<ThroughputResult> {
  const n = opts.tasks;
  const name = opts.name ?? "bench";
  const specs = Math.ceil(n / MAX_TASKS);
  const files = await Promise.all(
    Array.from({ length: specs }, (_, i) =>
      writeSpecFile(
        cluster.dir,
        specs === 1 ? name : `${name}-${i + 1}`,
        Math.min(MAX_TASKS, n - i * MAX_TASKS),
        opts.run ?? ["true"],
      )),
  );
  const watch = await TaskWatch.start(cluster.client());
  const stopRss = rssPeak(cluster.nodes.map((x) => x.pid));
  try {
    const ev0 = await scrapeCounter(cluster.nodes, EVENTS);
    const cf0 = await scrapeCounter(cluster.nodes, CONFLICTS);
    const rev0 = await cluster.etcd.revision();
    const writes0 = watch.writes;
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
    // Every spec at once: the backlog is all of them, queued together.
    await Promise.all(files.map(async (file) => {
      const res = await cli(cluster.etcd, ["dispatch", file, "--json"], {
        timeoutMs: 120_000,
      });
      if (res.code !== 0) {
        throw new Error(`bench: dispatch failed\n${res.explain()}`);
      }
    }));
    await done;
    const seconds = (performance.now() - t0) / 1000;
    const cpuPerTask = cpu(n);
    const revisions = (await cluster.etcd.revision()) - rev0;
    const writes = watch.writes - writes0;
    const events = await nodeEvents(cluster, ev0, writes);
    const conflicts = (await scrapeCounter(cluster.nodes, CONFLICTS))
      .reduce((a, v, i) => a + v - cf0[i], 0);
    const notDone = [...watch.tasks.values()].filter((t) => t.state !== "DONE")
      .length;
    return {
      tasks: n,
      nodes: cluster.nodes.length,
      seconds,
      tasks_per_s: n / seconds,
      revisions,
      k: writes / n,
      revisions_per_task: revisions / n,
      watch_events_per_node_per_task: events.every(Number.isFinite)
        ? events.reduce((a, b) => a + b, 0) / events.length / n
        : null,
      claim_conflicts_per_task: Number.isFinite(conflicts)
        ? conflicts / n
        : null,
      not_done: notDone,
      end_states: watch.states(),
      node_rss_peak_mib: stopRss(),
      cpu: cpuPerTask,
    };
  } finally {
    stopRss();
    await watch.close();
  }
}

/**
 * Each node's watch events since `ev0`. A busy node may not have taken in
 * the last events yet when the bench's own watch saw them (a quick run read
 * 5.3 per task that way), so this waits, up to 10 s, until every node has
 * counted at least the `writes` the bench saw under the same prefix.
 */
async function nodeEvents(
  cluster: Cluster,
  ev0: number[],
  writes: number,
): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ev1 = await scrapeCounter(cluster.nodes, EVENTS);
    const events = ev1.map((v, i) => v - ev0[i]);
    if (
      !events.every(Number.isFinite) || events.every((e) => e >= writes) ||
      Date.now() > deadline
    ) return events;
    await new Promise((r) => setTimeout(r, 200));
  }
}
