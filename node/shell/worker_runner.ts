/**
 * The worker runner: the I/O of a worker's life, one effect at a time —
 * `prepare` (workspace Prepare), `spawn` (Pool Spawn, log tee), `abort`
 * (prepared but may not run: clean up) — each ending in an event for the
 * core. It decides nothing: whether a prepared task starts is the core's
 * decision (the `spawn` effect), made from the view when Prepare returns.
 */
import type {
  AbortEffect,
  KillEffect,
  NodeEvent,
  PrepareEffect,
  SpawnEffect,
} from "../core/mod.ts";
import type {
  Pool,
  PrepareResponse,
  SpawnRequest,
  Workspace,
} from "../exec/contracts.ts";
import { PrepareAhead } from "./prepare_ahead.ts";
import { TaskLogs } from "./task_logs.ts";
import type { Logger } from "./log.ts";
import type { SpecRecord } from "../schema.ts";
import { spawnEnv } from "../spawn_env.ts";
import type { Metrics } from "./metrics.ts";
import { now as clock } from "./clock.ts";

export interface WorkerRunnerDeps {
  data_dir: string;
  node_id: string;
  pool: Pool;
  workspace: Workspace;
  log: Logger;
  metrics: Metrics;
  push: (ev: NodeEvent) => void;
  /** The spec's YAML for Prepare (the workspace may need it). */
  specYaml: (specId: string) => string;
  /** The spec record, whose `env` every task of the spec gets (node/spawn_env.ts). */
  spec: (specId: string) => SpecRecord | undefined;
}

type Result = {
  code: number | null;
  signal: string | null;
  error: string | null;
  lost: boolean;
};

/** After a failed Kill, how long until the core hears it and decides again. */
const KILL_RETRY_PAUSE_MS = 500;
/** How long a node's stop waits for its workers to end before its lease goes. */
const STOP_WAIT_MS = 3000;
/**
 * A Spawn stream that broke without an exit: how long the Kill of its worker
 * is retried before the attempt is given up as lost anyway. By then a pool
 * that answers nothing has been found unhealthy (3 Health checks 10 s apart)
 * and restarted, and the new incarnation reaps the old one's workers.
 */
const BROKEN_STREAM_KILL_FOR_MS = 60_000;

async function writeAll(f: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) {
    off += await f.write(data.subarray(off));
  }
}

export class WorkerRunner {
  /** Workspace cleanups still running, by task. */
  #cleaning = new Map<string, Promise<void>>();
  /** The tasks' log files (task_logs.ts). */
  #logs: TaskLogs;

  /** Prepares started while their claim is in flight (prepare_ahead.ts). */
  readonly ahead = new PrepareAhead({
    prepare: (specId, taskId) => this.#prepareWorkspace(specId, taskId),
    cleanup: (specId, taskId, workdir) =>
      this.#cleanup(specId, taskId, workdir),
  });

  constructor(readonly deps: WorkerRunnerDeps) {
    this.#logs = new TaskLogs(deps.log);
  }

  /** Workspace Prepare; a re-claim right after a lost attempt uses the same directory. */
  async #prepareWorkspace(
    specId: string,
    taskId: string,
  ): Promise<PrepareResponse> {
    await this.#cleaning.get(taskId);
    return await this.deps.workspace.prepare({
      spec_id: specId,
      task_id: taskId,
      spec_yaml: this.deps.specYaml(specId),
      hints: {},
    });
  }

  /** Prepares the workspace; the core decides what happens next on `worker_prepared`. */
  async prepare(e: PrepareEffect): Promise<void> {
    const env = e.envelope;
    try {
      const ws = await (this.ahead.take(env.task_id) ??
        this.#prepareWorkspace(env.spec_id, env.task_id));
      this.deps.push({
        type: "worker_prepared",
        at: clock(),
        task_id: env.task_id,
        fence: e.fence,
        workdir: ws.workdir,
        env: ws.env,
      });
    } catch (err) {
      // Never started: the attempt is lost to the machinery, not the task's fault.
      this.#exited(env.task_id, e.fence, {
        code: null,
        signal: null,
        error: firstLine(err),
        lost: true,
      });
    }
  }

  /** Spawns still following their worker (their commands may run), by task. */
  #live = new Map<string, Promise<void>>();

  /** Starts the command the core just allowed, and tees its output to the task's log. */
  spawn(e: SpawnEffect): Promise<void> {
    const p = this.#spawn(e);
    this.#live.set(e.task_id, p);
    return p.finally(() => {
      if (this.#live.get(e.task_id) === p) this.#live.delete(e.task_id);
    });
  }

  /**
   * The node's stop: kills every worker (SIGTERM, SIGKILL after 2 s) and
   * resolves once they are gone, or after 3 s (a pool that answers nothing).
   * The lease must outlive them: released earlier, another node could start
   * the same task while one that ignores SIGTERM still runs here.
   */
  async stopAll(workers: { task_id: string; fence: number }[]): Promise<void> {
    const deadline = clock() + STOP_WAIT_MS;
    const out = Promise.withResolvers<true>();
    const timer = setTimeout(() => out.resolve(true), STOP_WAIT_MS);
    // A Kill the pool refuses (restarting) is sent again until the deadline:
    // ignored once, the command would run on after the lease is released.
    const kill = async (w: { task_id: string; fence: number }) => {
      do {
        const req = { task_id: w.task_id, claim_token: String(w.fence) };
        const sent = this.deps.pool.kill({ ...req, grace_ms: 2000 });
        if (
          await Promise.race([sent.then(() => true, () => false), out.promise])
        ) return;
        await new Promise<void>((r) => {
          const t = setTimeout(r, KILL_RETRY_PAUSE_MS);
          out.promise.then(() => (clearTimeout(t), r()));
        });
      } while (this.#live.has(w.task_id) && clock() < deadline);
    };
    await Promise.race([
      Promise.all([...workers.map(kill), ...this.#live.values()]),
      out.promise,
    ]);
    clearTimeout(timer);
    if (this.#live.size > 0) {
      this.deps.log.warn(
        "stopping with commands the pool has not confirmed ended",
        {
          task_ids: [...this.#live.keys()],
        },
      );
    }
  }

  async #spawn(e: SpawnEffect): Promise<void> {
    const env = e.envelope;
    const { data_dir, node_id } = this.deps;
    const dir = `${data_dir}/logs/${env.spec_id}`;
    let result: Result = { code: null, signal: null, error: null, lost: false };
    let file = null as Deno.FsFile | null; // a union, not narrowed to null: log() sets it
    // Created on the first output (task_logs.ts says why).
    const path = `${dir}/${env.task_id}.log`;
    let logFailed = false;
    // The log is best effort: a full disk or a removed directory must not end
    // the loop, or a command still running would be reported lost, its
    // workspace removed under it, and the task run again.
    const tee = async (data: Uint8Array) => {
      try {
        await writeAll(
          file ??= this.#logs.open(dir, path, env.dispatched_at),
          data,
        );
      } catch (err) {
        if (logFailed) return;
        logFailed = true;
        this.deps.log.warn("task output not logged", {
          task_id: env.task_id,
          path,
          error: firstLine(err),
        });
      }
    };
    let exited = false;
    let begun = false; // the log's start is done: never again for this attempt
    try {
      const req: SpawnRequest = {
        task_id: env.task_id,
        claim_token: String(e.fence),
        workdir: e.workdir,
        argv: Array.isArray(env.run) ? env.run : null,
        shell: typeof env.run === "string" ? env.run : null,
        prompt: env.prompt,
        env: spawnEnv(e.env, this.deps.spec(env.spec_id), env, {
          BOI_TASK_ID: env.task_id,
          BOI_SPEC_ID: env.spec_id,
          BOI_NODE_ID: node_id,
          BOI_ATTEMPT: String(e.attempt),
          BOI_CLAIM_TOKEN: String(e.fence),
        }),
        timeout_ms: env.timeout_ms,
      };
      for await (const ev of this.deps.pool.spawn(req)) {
        if ("started" in ev) {
          const now = clock();
          this.deps.metrics.observe(
            "boi_dispatch_to_start_seconds",
            (now - env.dispatched_at) / 1000,
          );
          this.deps.log.debug("worker started", {
            task_id: env.task_id,
            fence: e.fence,
            pid: ev.started.pid,
          });
          this.deps.push({
            type: "worker_started",
            at: now,
            task_id: env.task_id,
            fence: e.fence,
            pid: ev.started.pid,
          });
          // Made once started, not before Spawn: a new spec's mkdir cost
          // this machine 0.1-2 ms of dispatch → started (measured).
          this.#logs.started(dir, path, env.dispatched_at, e.attempt);
          begun = true;
        } else if ("stdout" in ev) {
          await tee(ev.stdout);
        } else if ("stderr" in ev) {
          await tee(ev.stderr);
        } else {
          result = { ...ev.exit, lost: false };
          exited = true;
        }
      }
    } catch (err) {
      // The task never got to end on its own: a plugin crashed or refused.
      result = { code: null, signal: null, error: firstLine(err), lost: true };
    } finally {
      file?.close();
    }
    // A stream that ended without an exit (a broken transport, a refused
    // call) says nothing about the command: the pool may run it on. Its
    // attempt ends only once the pool has taken a Kill.
    if (!exited) await this.#killBroken(env.task_id, e.fence);
    // Tail tells a silent task by it, started or not.
    if (!begun) this.#logs.started(dir, path, env.dispatched_at, e.attempt);
    this.#exited(env.task_id, e.fence, result);
    this.#cleanup(env.spec_id, env.task_id, e.workdir);
  }

  /**
   * Stops a worker the core must not let go on (claim lost, cancel
   * requested). A Kill the pool did not take goes back to the core, which
   * decides it again: it must not be forgotten while the worker may run.
   */
  kill(e: KillEffect): void {
    this.deps.log.info("killing worker", {
      task_id: e.task_id,
      fence: e.fence,
      reason: e.reason,
    });
    this.deps.pool.kill({
      task_id: e.task_id,
      claim_token: String(e.fence),
      grace_ms: e.grace_ms,
    }).catch(async (err) => {
      this.deps.log.error("kill failed", {
        task_id: e.task_id,
        fence: e.fence,
        error: firstLine(err),
      });
      await new Promise((r) => setTimeout(r, KILL_RETRY_PAUSE_MS));
      this.deps.push({
        type: "kill_failed",
        at: clock(),
        task_id: e.task_id,
        fence: e.fence,
      });
    });
  }

  /** Kills the worker of a broken Spawn stream, retried until the pool takes it or the deadline. */
  async #killBroken(taskId: string, fence: number): Promise<void> {
    const until = clock() + BROKEN_STREAM_KILL_FOR_MS;
    for (let pause = 250;; pause = Math.min(pause * 2, 5000)) {
      try {
        await this.deps.pool.kill({
          task_id: taskId,
          claim_token: String(fence),
          grace_ms: 0,
        });
        return;
      } catch (err) {
        if (clock() + pause > until) {
          this.deps.log.error("kill of a broken stream's worker not taken", {
            task_id: taskId,
            fence,
            error: firstLine(err),
          });
          return;
        }
      }
      await new Promise((r) => setTimeout(r, pause));
    }
  }

  /** A prepared task that may not run: its workspace goes, the core hears it ended unstarted. */
  abort(e: AbortEffect, specId: string): void {
    this.deps.log.info("not starting a prepared task", {
      task_id: e.task_id,
      fence: e.fence,
      reason: e.reason,
    });
    this.#cleanup(specId, e.task_id, e.workdir);
    this.#exited(e.task_id, e.fence, {
      code: null,
      signal: null,
      error: `not started: ${e.reason}`,
      lost: true,
    });
  }

  #exited(taskId: string, fence: number, r: Result): void {
    this.deps.log.log(r.lost ? "warn" : "debug", "worker exited", {
      task_id: taskId,
      fence,
      ...r,
    });
    this.deps.push({
      type: "worker_exit",
      at: clock(),
      task_id: taskId,
      fence,
      ...r,
    });
  }

  /**
   * Removes a task's workspace (once `workdir` is known, for one prepared
   * ahead). A prepare of the same task (a re-claim right after a lost
   * attempt) waits for it: same directory.
   */
  #cleanup(
    specId: string,
    taskId: string,
    workdir: string | Promise<string>,
  ): void {
    const done = Promise.resolve(workdir).then((w) =>
      this.deps.workspace.cleanup({
        spec_id: specId,
        task_id: taskId,
        workdir: w,
      })
    ).catch(() => {}).finally(() => {
      if (this.#cleaning.get(taskId) === done) this.#cleaning.delete(taskId);
    });
    this.#cleaning.set(taskId, done);
  }
}

function firstLine(err: unknown): string {
  return `${(err as Error)?.message ?? err}`.split("\n")[0];
}
