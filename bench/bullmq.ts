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
 * Try it alone: `deno run -A bench/bullmq.ts [--jobs 500] [--trials 3]
 * [--kill-spread-ms 30000] [--only e2e|failover]` (small sizes by default;
 * prints JSON lines).
 * @module
 */
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** bench/peer: the Node.js side (worker.mjs, producer.mjs, node_modules). */
const PEER_DIR = fileURLToPath(new URL("./peer/", import.meta.url));

/** BullMQ's default `stalledInterval` (ms), which the failover run keeps. */
const BULLMQ_STALLED_INTERVAL_MS = 30_000;
/** BullMQ's default `lockDuration` (ms), which the failover run keeps. */
const BULLMQ_LOCK_DURATION_MS = 30_000;

/** How much of a child's stderr to keep for error messages. */
const STDERR_TAIL_BYTES = 4096;

/** Finds an executable on PATH, so a missing tool is named up front. */
async function onPath(name: string, hint: string): Promise<string> {
  const path = Deno.env.get("PATH") ?? "";
  for (const dir of path.split(":")) {
    if (dir === "") continue;
    const file = `${dir}/${name}`;
    try {
      const st = await Deno.stat(file);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return file;
    } catch {
      // not in this dir
    }
  }
  throw new Error(
    `bench/bullmq: ${name} must be on PATH (${hint}); PATH is ${
      JSON.stringify(path)
    }`,
  );
}

/** `node`, and a check that the peer's npm dependencies are installed. */
async function peerNode(): Promise<string> {
  const node = await onPath("node", "the BullMQ peer runs on Node.js");
  try {
    await Deno.stat(`${PEER_DIR}node_modules/bullmq/package.json`);
  } catch {
    throw new Error(
      `bench/bullmq: ${PEER_DIR}node_modules/bullmq must be installed; it is missing (run bash scripts/setup_peer.sh)`,
    );
  }
  return node;
}

/** A loopback TCP port nobody listens on right now. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Sends PING and reports whether redis answered +PONG. */
async function redisPing(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null &&
      new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}

async function readTail(file: string): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).slice(-STDERR_TAIL_BYTES);
  } catch {
    return "(no log)";
  }
}

/** Options of {@linkcode startRedis}. */
export interface RedisOptions {
  /**
   * How long to wait for the server to answer PING.
   * @default 10000
   */
  readyTimeoutMs?: number;
}

/**
 * Starts a private redis-server: loopback only, a random free port, no
 * persistence (no RDB, no AOF), its working dir and log in a fresh temp dir.
 * Private so the bench never touches a redis someone else uses, and without
 * persistence so disk writes do not enter BullMQ's numbers (boi's etcd does
 * write to disk: that is part of boi's guarantee, and of BullMQ's defaults
 * being weaker). `stop()` kills it and removes the dir.
 */
export async function startRedis(
  opts: RedisOptions = {},
): Promise<{ port: number; stop(): Promise<void> }> {
  const redisServer = await onPath(
    "redis-server",
    "bash scripts/setup_peer.sh installs it",
  );
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  const dir = await Deno.makeTempDir({ prefix: "boi-bench-redis-" });
  const logFile = `${dir}/redis.log`;
  // A port picked free can be taken before redis binds it: try a few.
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    // Through a small sh that SIGKILLs redis once our end of its stdin
    // closes, so even a driver killed before its `finally` leaves no redis
    // behind (redis itself ignores stdin). The sh exits with redis' status.
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        'exec 3<&0; "$@" </dev/null & pid=$!; (cat <&3 >/dev/null; kill -9 $pid 2>/dev/null) & wait $pid',
        "sh",
        redisServer,
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "yes",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--logfile",
        logFile,
        "--daemonize",
        "no",
        // BullMQ requires it (it is redis' default too): never evict job keys.
        "--maxmemory-policy",
        "noeviction",
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
      // Own process group: stop() kills sh, redis and cat together.
      detached: true,
    }).spawn();
    let exited: Deno.CommandStatus | undefined;
    child.status.then((s) => exited = s);
    const stop = async () => {
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
      await child.stdin.close().catch(() => {});
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    const deadline = Date.now() + readyTimeoutMs;
    while (exited === undefined && Date.now() < deadline) {
      if (await redisPing(port)) return { port, stop };
      await new Promise((r) => setTimeout(r, 20));
    }
    const log = await readTail(logFile);
    if (exited !== undefined && attempt < 3) {
      await child.stdin.close().catch(() => {});
      continue; // most likely the port was taken meanwhile
    }
    await stop();
    throw new Error(
      exited !== undefined
        ? `bench/bullmq: redis-server on port ${port} must stay up; it exited with code ${exited.code}. Log tail:\n${log}`
        : `bench/bullmq: redis-server on port ${port} must answer PING within ${readyTimeoutMs} ms; it did not. Log tail:\n${log}`,
    );
  }
}

/** A JSON line a peer process printed on stdout. */
interface PeerEvent {
  ev: string;
  pid: number;
  job?: string;
  t?: number;
  err?: string;
  [k: string]: unknown;
}

/**
 * One Node.js process of the peer (worker.mjs or producer.mjs) in its own
 * process group, so a kill takes its children (the jobs' commands) with it.
 * Collects its stdout JSON lines as events and the tail of its stderr.
 */
class PeerProc {
  readonly pid: number;
  readonly events: PeerEvent[] = [];
  /**
   * Events seen per `ev`, kept as they arrive: the wait loops run on the same
   * 2 cores as BullMQ and must not rescan thousands of events each time.
   */
  readonly counts = new Map<string, number>();
  /** The first `failed` event, if any. */
  failed: PeerEvent | undefined;
  exited: Deno.CommandStatus | undefined;
  #child: Deno.ChildProcess;
  #stderr = "";
  #listeners = new Set<() => void>();
  #drained: Promise<unknown>;
  readonly name: string;

  constructor(node: string, script: string, args: string[], name: string) {
    this.name = name;
    this.#child = new Deno.Command(node, {
      args: [script, ...args],
      cwd: PEER_DIR,
      // Kept open: the peer exits when it closes, so even a driver killed
      // before its `finally` leaves no worker behind.
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // Own process group: stop() and kill() reach the jobs' children too.
      detached: true,
    }).spawn();
    this.pid = this.#child.pid;
    this.#drained = Promise.all([this.#readStdout(), this.#readStderr()]);
    // Exited only once stdout is read to its end too, so a line printed just
    // before exiting is never missed.
    Promise.all([this.#child.status, this.#drained]).then(([s]) => {
      this.exited = s;
      this.#notify();
    });
  }

  async #readStdout(): Promise<void> {
    let buf = "";
    for await (
      const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === "") continue;
        let ev: PeerEvent;
        try {
          ev = JSON.parse(line);
        } catch {
          this.#stderr = (this.#stderr + `(stdout) ${line}\n`).slice(
            -STDERR_TAIL_BYTES,
          );
          continue;
        }
        this.events.push(ev);
        this.counts.set(ev.ev, (this.counts.get(ev.ev) ?? 0) + 1);
        if (ev.ev === "failed") this.failed ??= ev;
      }
      this.#notify();
    }
  }

  async #readStderr(): Promise<void> {
    for await (
      const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())
    ) {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_TAIL_BYTES);
    }
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  /** Calls `l` at each new event and at exit, until {@linkcode offChange}. */
  onChange(l: () => void): void {
    this.#listeners.add(l);
  }

  offChange(l: () => void): void {
    this.#listeners.delete(l);
  }

  /** The last lines of its stderr, for error messages. */
  stderrTail(): string {
    return this.#stderr.trim() || "(empty)";
  }

  /** SIGKILLs the whole process group at once (a crash); does not wait. */
  signalKill(): void {
    if (this.exited !== undefined) return;
    try {
      Deno.kill(-this.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }

  /** Kills the whole process group and waits until it is gone. */
  async kill(): Promise<void> {
    this.signalKill();
    await this.#child.stdin.close().catch(() => {});
    await this.#child.status;
    await this.#drained;
  }
}

/**
 * Waits until `done()` holds, re-checking whenever one of `procs` prints or
 * exits. Throws past the deadline, when a job failed, or when one of `procs`
 * not in `mayExit` exits, with `seen()` and stderr tails in the message.
 */
async function waitUntil(
  procs: PeerProc[],
  done: () => boolean,
  timeoutMs: number,
  what: string,
  seen: () => string,
  mayExit: PeerProc[] = [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const stderr = () =>
    procs
      .filter((p) => p.stderrTail() !== "(empty)")
      .slice(0, 3)
      .map((p) => `\n--- ${p.name} (pid ${p.pid}) stderr:\n${p.stderrTail()}`)
      .join("");
  while (!done()) {
    for (const p of procs) {
      const failed = p.failed;
      if (failed) {
        throw new Error(
          `bench/bullmq: ${what}: jobs must not fail; ${p.name} (pid ${p.pid}) reports job ${failed.job} failed: ${failed.err}${stderr()}`,
        );
      }
    }
    const dead = procs.find((p) => p.exited && !mayExit.includes(p));
    if (dead) {
      throw new Error(
        `bench/bullmq: ${what}: ${dead.name} (pid ${dead.pid}) must keep running; it exited with code ${dead.exited?.code}. Seen: ${seen()}${stderr()}`,
      );
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `bench/bullmq: ${what} must happen within ${timeoutMs} ms; it did not. Seen: ${seen()}${stderr()}`,
      );
    }
    // Until one of them prints or exits, or a second passes (no timer left).
    await new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        for (const p of procs) p.offChange(finish);
        resolve();
      };
      const timer = setTimeout(finish, Math.min(1000, deadline - Date.now()));
      for (const p of procs) p.onChange(finish);
    });
  }
}

function startWorker(
  node: string,
  port: number,
  queue: string,
  concurrency: number,
  report: string,
  name: string,
): PeerProc {
  return new PeerProc(node, "worker.mjs", [
    "--port",
    String(port),
    "--queue",
    queue,
    "--concurrency",
    String(concurrency),
    "--report",
    report,
  ], name);
}

/** Waits for every worker's ready line (both redis connections up). */
async function workersReady(
  workers: PeerProc[],
  timeoutMs: number,
): Promise<void> {
  const ready = () => workers.filter((w) => w.counts.has("ready"));
  await waitUntil(
    workers,
    () => ready().length === workers.length,
    timeoutMs,
    `${workers.length} BullMQ worker(s) connecting`,
    () => `${ready().length} of ${workers.length} ready`,
  );
}

/** Runs producer.mjs to completion and returns its `added` event. */
async function produce(
  node: string,
  port: number,
  queue: string,
  jobs: number,
  cmd: string[],
  timeoutMs: number,
  workers: PeerProc[],
): Promise<{ t0: number; t1: number }> {
  const producer = new PeerProc(node, "producer.mjs", [
    "--port",
    String(port),
    "--queue",
    queue,
    "--jobs",
    String(jobs),
    "--cmd",
    JSON.stringify(cmd),
  ], "producer.mjs");
  try {
    const added = () => producer.events.find((e) => e.ev === "added");
    await waitUntil(
      [producer, ...workers],
      () => added() !== undefined || producer.exited !== undefined,
      timeoutMs,
      `adding ${jobs} jobs with addBulk`,
      () => "no 'added' line from producer.mjs yet",
      [producer],
    );
    const ev = added();
    if (ev === undefined) {
      throw new Error(
        `bench/bullmq: producer.mjs must add ${jobs} jobs and print 'added'; it exited with code ${producer.exited?.code} without. stderr:\n${producer.stderrTail()}`,
      );
    }
    return { t0: ev.t0 as number, t1: ev.t1 as number };
  } finally {
    await producer.kill();
  }
}

/** Options of {@linkcode bullmqEndToEnd}. */
export interface EndToEndOptions {
  /** Jobs to add, each running `true`. */
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

/**
 * End to end: `jobs` jobs each spawning `true`, on `workers` worker processes
 * with `concurrency` each. The clock runs from just before the first addBulk
 * (workers already connected) to the last job completed in redis, as the
 * workers report it ('completed' events, timestamped by the worker; all
 * processes share this machine's clock).
 */
export async function bullmqEndToEnd(
  opts: EndToEndOptions,
): Promise<{ jobs: number; seconds: number; tasks_per_s: number }> {
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
    const queue = "bench-e2e";
    for (let i = 0; i < nWorkers; i++) {
      workers.push(
        startWorker(
          node,
          redis.port,
          queue,
          concurrency,
          "done",
          `worker ${i}`,
        ),
      );
    }
    await workersReady(workers, 30_000);
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
    return { jobs, seconds, tasks_per_s: jobs / seconds };
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
      only: { type: "string" },
    },
  });
  const jobs = Number(args.jobs);
  const trials = Number(args.trials);
  if (args.only !== "failover") {
    const t = performance.now();
    const e2e = await bullmqEndToEnd({ jobs, workers: 3, concurrency: 4 });
    console.log(JSON.stringify({
      bullmq_end_to_end: {
        ...e2e,
        workers: 3,
        concurrency: 4,
        wall_s: (performance.now() - t) / 1000,
      },
    }));
  }
  if (args.only !== "e2e") {
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
