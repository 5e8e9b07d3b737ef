/**
 * The Node.js processes of the BullMQ peer (bench/peer/*.mjs) as the driver
 * sees them: each in its own process group, its stdout JSON lines as events.
 * @module
 */
import { fileURLToPath } from "node:url";
import { onPath, STDERR_TAIL_BYTES } from "./peer_redis.ts";

/** bench/peer: the Node.js side (worker.mjs, producer.mjs, node_modules). */
const PEER_DIR = fileURLToPath(new URL("./peer/", import.meta.url));

/** `node`, and a check that the peer's npm dependencies are installed. */
export async function peerNode(): Promise<string> {
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

/** A JSON line a peer process printed on stdout. */
export interface PeerEvent {
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
export class PeerProc {
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
export async function waitUntil(
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

export function startWorker(
  node: string,
  port: number,
  queue: string,
  concurrency: number,
  report: string,
  name: string,
  extra: string[] = [],
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
    ...extra,
  ], name);
}

/** Waits for every worker's ready line (both redis connections up). */
export async function workersReady(
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
export async function produce(
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
