/**
 * The rows of issue 16 that ask whether a cost grows with something it must
 * not grow with: the backlog (CPU per task with few vs many tasks queued at
 * once) and the node count (total node CPU per task, and the watch events
 * each node receives per task, on 3, 6, 9 nodes). Noop pool throughout, each
 * run on a fresh cluster so no run pays for the one before.
 */
import { startCluster } from "./cluster.ts";
import { CP_WORKERS, SCALE_TTL_S } from "./sizes.ts";
import { cpuMeter } from "./cpu.ts";
import { throughput, type ThroughputResult } from "./throughput.ts";

/** Lets a fresh cluster's start-up (registration, plugin handshakes) settle. */
const SETTLE_MS = 1000;
/** Then the idle cluster's CPU is measured for this long, before the dispatch. */
const IDLE_MS = 1500;

/** A noop run, with what the cluster's nodes burn idle (timers, keepalives). */
export interface NoopRunResult extends ThroughputResult {
  /** CPU per second of the idle cluster just before the run (ms/s), all nodes. */
  idle: { nodes_ms_per_s: number; etcd_ms_per_s: number };
}

/**
 * Runs already made in this bench, by nodes × tasks: the backlog's small run
 * and the node count's 3-node run are the same measurement when their sizes
 * agree (--quick), so it is made once.
 */
const made = new Map<string, Promise<NoopRunResult>>();

/** Runs `tasks` tasks on a fresh noop cluster of `nodes` nodes (once per size). */
export function noopRun(
  nodes: number,
  tasks: number,
  name: string,
): Promise<NoopRunResult> {
  const key = `${nodes}x${tasks}`;
  let run = made.get(key);
  if (run === undefined) made.set(key, run = freshNoopRun(nodes, tasks, name));
  return run;
}

async function freshNoopRun(
  nodes: number,
  tasks: number,
  name: string,
): Promise<NoopRunResult> {
  await using c = await startCluster({
    nodes,
    pool: "noop",
    workersMax: CP_WORKERS,
    leaseTtlS: SCALE_TTL_S,
  });
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const idle = cpuMeter(
    c.nodes.map((n) => n.pid),
    c.etcd.members[0]?.pid ?? null,
  );
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const perS = idle(IDLE_MS / 1000); // "per task" with seconds as the tasks
  return {
    ...await throughput(c, { tasks, name }),
    idle: { nodes_ms_per_s: perS.nodes_ms, etcd_ms_per_s: perS.etcd_ms },
  };
}

/** CPU per task with each backlog size queued at once, 3 nodes. */
export async function backlog(
  sizes: readonly number[],
  step: (msg: string) => void,
): Promise<NoopRunResult[]> {
  const out: NoopRunResult[] = [];
  for (const n of sizes) {
    step(`backlog: ${n} tasks queued at once, 3 nodes, noop pool`);
    out.push(await noopRun(3, n, `backlog-${n}`));
  }
  return out;
}

/** The same tasks on each node count. */
export async function nodeCount(
  counts: readonly number[],
  tasks: number,
  step: (msg: string) => void,
): Promise<NoopRunResult[]> {
  const out: NoopRunResult[] = [];
  for (const nodes of counts) {
    step(`node count: ${tasks} tasks on ${nodes} nodes, noop pool`);
    out.push(await noopRun(nodes, tasks, `nodes-${nodes}`));
  }
  return out;
}
