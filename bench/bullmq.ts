/**
 * The BullMQ peer of `deno task bench` (issue 6): the numbers a TypeScript
 * team would get from BullMQ, the job queue it would otherwise pick, measured
 * on the same machine as boi.
 *
 * BullMQ runs as it is meant to: Node.js processes (bench/peer/*.mjs, bullmq
 * pinned in bench/peer/package-lock.json) against a private `redis-server`,
 * with BullMQ's defaults except each worker's concurrency. Each job spawns its
 * command as a child process, like a boi task does. Install both with
 * `bash scripts/setup_peer.sh`.
 *
 * The control-plane peer (issue 16) runs the same workers with a processor
 * that returns at once (`--noop`), against boi's noop pool.
 *
 * Try it alone: `deno run -A bench/bullmq.ts [--jobs 500] [--trials 3]
 * [--concurrency 128] [--kill-spread-ms 30000] [--only e2e|noop|failover]`
 * (small sizes by default; prints JSON lines; --concurrency is the noop
 * run's, e2e uses 4).
 * @module
 */
import { parseArgs } from "node:util";
import {
  peerNode,
  type PeerProc,
  produce,
  startWorker,
  waitUntil,
  workersReady,
} from "./peer_proc.ts";
import { startRedis } from "./peer_redis.ts";
import { machineMeter, pidsMeter } from "./cpu.ts";

/** BullMQ's default `stalledInterval` (ms), which the failover run keeps. */
const BULLMQ_STALLED_INTERVAL_MS = 30_000;
/** BullMQ's default `lockDuration` (ms), which the failover run keeps. */
const BULLMQ_LOCK_DURATION_MS = 30_000;

/** Options of {@linkcode bullmqEndToEnd} and {@linkcode bullmqNoop}. */
export interface EndToEndOptions {
  /** Jobs to add, each running `true` (none is run with the noop processor). */
  jobs: number;
  /** Worker processes. */
  workers: number;
  /** BullMQ `concurrency` of each worker process. */
  concurrency: number;
  /**
   * Deadline for all jobs to complete once added.
   * @default 60000 + 20 ms per job
   */
  timeoutMs?: number;
}

/** What a BullMQ throughput run measured. */
export interface BullmqRunResult {
  jobs: number;
  workers: number;
  concurrency: number;
  seconds: number;
  tasks_per_s: number;
  /**
   * CPU per job (ms) from just before the first addBulk to the last job
   * completed (start-up excluded): the worker processes with the commands
   * they ran, redis, and the whole machine (this driver and the producer
   * included).
   */
  cpu: { workers_ms: number; redis_ms: number; machine_ms: number };
}

/**
 * End to end: `jobs` jobs each spawning `true`, on `workers` worker processes
 * with `concurrency` each. The clock runs from just before the first addBulk
 * (workers already connected) to the last job completed in redis, as the
 * workers report it ('completed' events, timestamped by the worker; all
 * processes share this machine's clock).
 */
export function bullmqEndToEnd(
  opts: EndToEndOptions,
): Promise<BullmqRunResult> {
  return bullmqRun(opts, false);
}

/**
 * The control-plane peer: the same run with a processor that returns at once
 * (worker.mjs --noop), so only BullMQ's own queue work is measured, as boi's
 * noop pool measures only boi's.
 */
export function bullmqNoop(opts: EndToEndOptions): Promise<BullmqRunResult> {
  return bullmqRun(opts, true);
}

async function bullmqRun(
  opts: EndToEndOptions,
  noop: boolean,
): Promise<BullmqRunResult> {
  const { jobs, workers: nWorkers, concurrency } = opts;
  for (
    const [k, v] of Object.entries({ jobs, workers: nWorkers, concurrency })
  ) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`bench/bullmq: ${k} must be an integer >= 1, got ${v}`);
    }
  }
  const timeoutMs = opts.timeoutMs ?? 60_000 + 20 * jobs;
  const node = await peerNode();
  const redis = await startRedis();
  const workers: PeerProc[] = [];
  try {
    const queue = noop ? "bench-noop" : "bench-e2e";
    for (let i = 0; i < nWorkers; i++) {
      workers.push(
        startWorker(
          node,
          redis.port,
          queue,
          concurrency,
          "done",
          `worker ${i}`,
          noop ? ["--noop"] : [],
        ),
      );
    }
    await workersReady(workers, 30_000);
    const workersCpu = pidsMeter(workers.map((w) => w.pid));
    const redisCpu = pidsMeter([redis.pid]);
    const machineCpu = machineMeter();
    const { t0 } = await produce(
      node,
      redis.port,
      queue,
      jobs,
      ["true"],
      timeoutMs,
      workers,
    );
    const doneCount = () =>
      workers.reduce((n, w) => n + (w.counts.get("done") ?? 0), 0);
    await waitUntil(
      workers,
      () => doneCount() >= jobs,
      timeoutMs,
      `${jobs} jobs completing`,
      () =>
        `${doneCount()} completed (${
          workers.map((w) => w.counts.get("done") ?? 0).join("+")
        })`,
    );
    const cpu = {
      workers_ms: workersCpu(jobs),
      redis_ms: redisCpu(jobs),
      machine_ms: machineCpu(jobs),
    };
    const done = workers.flatMap((w) =>
      w.events.filter((e) => e.ev === "done")
    );
    const ids = new Set(done.map((e) => e.job));
    if (ids.size !== jobs || done.length !== jobs) {
      throw new Error(
        `bench/bullmq: each of ${jobs} jobs must complete exactly once; saw ${done.length} completions of ${ids.size} distinct jobs`,
      );
    }
    const tEnd = Math.max(...done.map((e) => e.t as number));
    const seconds = (tEnd - t0) / 1000;
    return {
      jobs,
      workers: nWorkers,
      concurrency,
      seconds,
      tasks_per_s: jobs / seconds,
      cpu,
    };
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await redis.stop();
  }
}

/** Options of {@linkcode bullmqFailover}. */
export interface FailoverOptions {
  /** Jobs whose worker is killed, one victim worker process each. */
  trials: number;
  /**
   * The kills are spread evenly over this window (ms). BullMQ's stalled check
   * runs once per `stalledInterval` for the whole queue (a shared redis key
   * gates it), so jobs killed at one instant all wait for the same check and
   * give one sample `trials` times. Spread over one interval, the kills land
   * at every phase of that check and of the lock renewal, like crashes at
   * random moments. 0 kills all victims at one instant.
   * @default 30000 (BullMQ's default stalledInterval)
   */
  killSpreadMs?: number;
  /**
   * Deadline for every job to start again after the last kill.
   * @default 120000 (lockDuration + 2 stalled intervals + 30 s slack)
   */
  recoveryTimeoutMs?: number;
}

/**
 * Failover with BullMQ's defaults (lockDuration 30 s, stalledInterval 30 s,
 * maxStalledCount 1): `trials` jobs, each running `sleep 3600` on its own
 * victim worker (concurrency 1); one survivor worker (concurrency `trials`)
 * joins once every job is active. Each victim's process group is SIGKILLed
 * (the crash of a machine), and a sample is the time from that kill to the
 * job's processor starting again on the survivor, after BullMQ's stalled-job
 * check moved it back to wait. Trials run concurrently because each takes
 * 30–60 s. Returns every sample in ms, in kill order.
 */
export async function bullmqFailover(
  opts: FailoverOptions,
): Promise<{ samples_ms: number[] }> {
  const { trials } = opts;
  if (!Number.isInteger(trials) || trials < 1) {
    throw new Error(
      `bench/bullmq: trials must be an integer >= 1, got ${trials}`,
    );
  }
  const killSpreadMs = opts.killSpreadMs ?? BULLMQ_STALLED_INTERVAL_MS;
  const recoveryTimeoutMs = opts.recoveryTimeoutMs ??
    BULLMQ_LOCK_DURATION_MS + 2 * BULLMQ_STALLED_INTERVAL_MS + 30_000;
  const node = await peerNode();
  const redis = await startRedis();
  const victims: PeerProc[] = [];
  let survivor: PeerProc | undefined;
  try {
    const queue = "bench-failover";
    for (let i = 0; i < trials; i++) {
      victims.push(
        startWorker(node, redis.port, queue, 1, "start", `victim ${i}`),
      );
    }
    // 20 Node.js processes loading bullmq on 2 cores take a while.
    await workersReady(victims, 30_000 + 2_000 * trials);
    await produce(
      node,
      redis.port,
      queue,
      trials,
      ["sleep", "3600"],
      30_000,
      victims,
    );
    const started = () => victims.filter((v) => v.counts.has("start"));
    await waitUntil(
      victims,
      () => started().length === trials,
      30_000,
      `each of ${trials} victims starting its job`,
      () => `${started().length} of ${trials} victims started a job`,
    );
    // Only now does the survivor join, so no job started on it first.
    survivor = startWorker(
      node,
      redis.port,
      queue,
      trials,
      "start",
      "survivor",
    );
    await workersReady([survivor], 30_000);

    const killedAt = new Map<string, number>();
    const t0 = Date.now();
    for (let i = 0; i < trials; i++) {
      const at = t0 + (trials > 1 ? (killSpreadMs * i) / (trials - 1) : 0);
      const wait = at - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const victim = victims[i];
      const job = victim.events.find((e) => e.ev === "start")!.job!;
      killedAt.set(job, Date.now());
      victim.signalKill();
    }
    await Promise.all(victims.map((v) => v.kill()));
    const s = survivor;
    // At most `trials` start events on the survivor: rescanning is cheap.
    const restarted = () =>
      new Map(
        s.events.filter((e) => e.ev === "start" && killedAt.has(e.job!)).map((
          e,
        ) => [e.job!, e.t!]),
      );
    await waitUntil(
      [s],
      () => restarted().size === trials,
      recoveryTimeoutMs,
      `${trials} killed jobs starting again on the survivor`,
      () => `${restarted().size} of ${trials} restarted`,
    );
    const again = restarted();
    return {
      samples_ms: [...killedAt].map(([job, t]) => again.get(job)! - t),
    };
  } finally {
    await Promise.all(
      [...victims, ...(survivor ? [survivor] : [])].map((p) => p.kill()),
    );
    await redis.stop();
  }
}

/** Nearest-rank percentile, for the summary printed below. */
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(1, Math.ceil((p / 100) * s.length)) - 1];
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      jobs: { type: "string", default: "500" },
      trials: { type: "string", default: "3" },
      "kill-spread-ms": { type: "string" },
      concurrency: { type: "string", default: "128" },
      only: { type: "string" },
    },
  });
  const runs = (what: string) => args.only === undefined || args.only === what;
  const jobs = Number(args.jobs);
  const trials = Number(args.trials);
  if (runs("e2e")) {
    const t = performance.now();
    const e2e = await bullmqEndToEnd({ jobs, workers: 3, concurrency: 4 });
    console.log(JSON.stringify({
      bullmq_end_to_end: {
        ...e2e,
        wall_s: (performance.now() - t) / 1000,
      },
    }));
  }
  if (runs("noop")) {
    const t = performance.now();
    const concurrency = Number(args.concurrency);
    const noop = await bullmqNoop({ jobs, workers: 3, concurrency });
    console.log(JSON.stringify({
      bullmq_noop: { ...noop, wall_s: (performance.now() - t) / 1000 },
    }));
  }
  if (runs("failover")) {
    const t = performance.now();
    const killSpreadMs = args["kill-spread-ms"] === undefined
      ? undefined
      : Number(args["kill-spread-ms"]);
    const fo = await bullmqFailover({ trials, killSpreadMs });
    console.log(JSON.stringify({
      bullmq_failover: {
        trials,
        kill_spread_ms: killSpreadMs ?? BULLMQ_STALLED_INTERVAL_MS,
        p50_ms: pct(fo.samples_ms, 50),
        p99_ms: pct(fo.samples_ms, 99),
        samples_ms: fo.samples_ms,
        wall_s: (performance.now() - t) / 1000,
      },
    }));
  }
}
