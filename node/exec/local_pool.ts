/**
 * Reference pool: local processes, each in its own session and process group
 * so a kill or timeout takes the whole tree, and the group is reaped when the
 * leader exits so no task leaves a process behind.
 *
 * Invariant: the pid a worker reports (`started.pid`, what the pool plugin
 * records for reaping) is its session and process-group id, so
 * `kill(-pid, sig)` reaches the whole tree, grandchildren included — all but
 * a process that leaves the group itself (setsid, setpgid): that one is not
 * the task's any more, and the task ends 1-2 s after its leader even if it
 * holds the output pipes (spawner.pl).
 *
 * How a worker gets there: through the pool's spawner (spawner.ts,
 * spawner.pl), one long-lived perl process that forks, calls setsid() and
 * execs the task, relaying its output and exit status. A task costs one exec,
 * its own; Deno can do neither setsid nor setpgid in a spawn without forking
 * itself (`detached: true` forks all of Deno, a cost that grows with its
 * memory), and the `setsid -- argv…` wrapper used before cost a second exec
 * (docs/architecture.md, "The pool's spawner", has the measurements).
 *
 * Signals go through the spawner too: it alone reaps the tasks, so it never
 * signals a pid that was reused, and the pool needs no permission to signal.
 *
 * If the spawner dies, every task it ran ends with a `worker lost: …` error
 * (its pipes are gone with it), `onSpawnerDeath` is told, and a new spawner
 * SIGKILLs the groups the dead one left and serves the next tasks.
 */
import type {
  KillRequest,
  Pool,
  SpawnRequest,
  WorkerEvent,
} from "./contracts.ts";
import { ReplayLog } from "./replay_log.ts";
import { Spawner } from "./spawner.ts";

interface Running {
  /** The spawner the worker runs on, and its id there. */
  spawner: Spawner;
  id: number;
  /** The started pid (0 until then). */
  pid: number;
  log: ReplayLog;
  timers: Set<ReturnType<typeof setTimeout>>;
}

/** Options of {@linkcode LocalPool}. */
export interface LocalPoolOptions {
  /** The perl interpreter the spawner runs on. @default "perl" (on PATH) */
  perl?: string;
  /**
   * File recording the live process groups (kept by the spawner: a JSON
   * array of pgids), so the next incarnation can reap workers a crashed one
   * left behind: each spawner SIGKILLs the groups it names when it starts.
   * `null`: not recorded.
   * @default null
   */
  state_file?: string | null;
  /** Told which recorded groups a starting spawner SIGKILLed. @default nothing */
  onReaped?: (pgids: number[]) => void;
  /**
   * Told when a spawner dies, with the reason, before its tasks end as lost
   * (the pool plugin exits there: a spawner's death is the pool's crash).
   * @default nothing
   */
  onSpawnerDeath?: (reason: string) => void;
  /** Where the one-line warning that no spawner can start goes. @default console.error */
  warn?: (msg: string) => void;
}

/** Environment a task inherits from the node: enough to run programs, nothing about etcd. */
const INHERITED = [
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "TMPDIR",
  "TZ",
  "USER",
  "SHELL",
];

/** How many early kills {@linkcode LocalPool} remembers (oldest forgotten first). */
const EARLY_KILLS = 1024;

export class LocalPool implements Pool {
  #running = new Map<string, Running>();
  /**
   * Kills that arrived before their Spawn (the two calls raced): that Spawn
   * is refused, so a kill is never forgotten just because it came first.
   */
  #killedEarly = new Set<string>();
  #options: LocalPoolOptions;
  #spawner: Spawner | null = null;
  #warned = false;
  #inherited: Record<string, string> | null = null;

  constructor(options: LocalPoolOptions = {}) {
    this.#options = options;
  }

  /** Starts the spawner now (it is otherwise started by the first Spawn); throws if it cannot run. */
  ready(): Spawner {
    if (this.#spawner === null || this.#spawner.dead) {
      const s: Spawner = Spawner.start({
        perl: this.#options.perl,
        stateFile: this.#options.state_file ?? null,
        onReaped: this.#options.onReaped,
        onDeath: (reason, orphans) => this.#died(s, reason, orphans),
      });
      this.#spawner = s;
    }
    return this.#spawner;
  }

  /** SIGKILLs process groups a previous, crashed pool left behind. */
  reap(pgids: number[]): void {
    const s = this.ready();
    for (const pgid of pgids) s.reap(pgid);
  }

  /** Ends the spawner; it SIGKILLs whatever still runs. */
  async close(): Promise<void> {
    const s = this.#spawner;
    this.#spawner = null;
    await s?.close();
  }

  /** How many workers have not exited yet. */
  runningCount(): number {
    let n = 0;
    for (const r of this.#running.values()) if (!r.log.done) n++;
    return n;
  }

  /**
   * Kills every running worker (TERM, KILL after `grace_ms`), waits for
   * their exits, then ends the spawner: the pool is going away and they
   * would be orphans.
   */
  async shutdown(grace_ms: number): Promise<void> {
    const running = [...this.#running.entries()].filter(([, r]) => !r.log.done);
    await Promise.all(running.map(async ([key, r]) => {
      const [task_id, claim_token] = key.split("\x1f");
      await this.kill({ task_id, claim_token, grace_ms });
      for await (const _ of this.#follow(r)) { /* until its exit */ }
    }));
    await this.close();
  }

  /** `await using pool = new LocalPool()`: closed at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  spawn(req: SpawnRequest): AsyncIterable<WorkerEvent> {
    const key = `${req.task_id}\x1f${req.claim_token}`;
    let r = this.#running.get(key);
    if (!r && this.#killedEarly.delete(key)) {
      // Refused for good: a second Spawn of the key re-attaches to this end.
      r = {
        spawner: this.#spawner!, // never used: id 0 reached no spawner
        id: 0,
        pid: 0,
        log: new ReplayLog(),
        timers: new Set(),
      };
      r.log.push({ exit: { code: null, signal: "SIGKILL", error: null } });
      this.#running.set(key, r);
      this.#forget(key);
    }
    if (!r) r = this.#start(key, req);
    return this.#follow(r);
  }

  async kill(req: KillRequest): Promise<void> {
    const key = `${req.task_id}\x1f${req.claim_token}`;
    const r = this.#running.get(key);
    if (!r) {
      this.#killedEarly.add(key);
      if (this.#killedEarly.size > EARLY_KILLS) {
        this.#killedEarly.delete(this.#killedEarly.values().next().value!);
      }
      return;
    }
    if (r.log.done || r.id === 0) return; // ended, or never reached a spawner
    // The spawner reads requests in order: this reaches the task even if it
    // has not started yet, and is a no-op once it has exited.
    r.spawner.signal(r.id, req.grace_ms > 0 ? "SIGTERM" : "SIGKILL");
    if (req.grace_ms > 0) {
      r.timers.add(
        setTimeout(() => r.spawner.signal(r.id, "SIGKILL"), req.grace_ms),
      );
    }
    await Promise.resolve();
  }

  /** Replays the kept events, then follows until exit: re-attach is a second Spawn (replay_log.ts). */
  #follow(r: Running): AsyncIterable<WorkerEvent> {
    return r.log.follow();
  }

  #push(r: Running, ev: WorkerEvent): void {
    r.log.push(ev);
  }

  #start(key: string, req: SpawnRequest): Running {
    let spawner: Spawner | null = null;
    let startError = "";
    try {
      spawner = this.ready();
    } catch (e) {
      startError = `spawn failed: the pool's spawner cannot start (${
        this.#options.perl ?? "perl"
      }): ${(e as Error).message}`;
      if (!this.#warned) {
        this.#warned = true;
        (this.#options.warn ?? console.error)(
          `local_pool: ${startError}; no task can run (perl is in Debian's perl-base)`,
        );
      }
    }
    const r: Running = {
      spawner: spawner!,
      id: 0,
      pid: 0,
      log: new ReplayLog(),
      timers: new Set(),
    };
    this.#running.set(key, r);
    const argv = req.argv ??
      (req.shell !== null ? ["sh", "-c", req.shell] : null);
    const fail = (error: string) => {
      queueMicrotask(() => {
        this.#push(r, { exit: { code: null, signal: null, error } });
        this.#forget(key);
      });
      return r;
    };
    if (!argv) {
      return fail(
        "the reference pool needs `run`; this task has only a prompt",
      );
    }
    if (spawner === null) return fail(startError);
    const env: Record<string, string> = { ...this.#inheritedEnv() };
    Object.assign(env, req.env);
    let timedOut = false;
    r.id = spawner.spawn({ argv, cwd: req.workdir, env }, (ev) => {
      if ("started" in ev) r.pid = ev.started.pid;
      if ("exit" in ev) {
        for (const t of r.timers) clearTimeout(t);
        if (timedOut && ev.exit.error === null) {
          ev = {
            exit: { ...ev.exit, error: `timeout after ${req.timeout_ms}ms` },
          };
        }
        this.#push(r, ev);
        this.#forget(key);
        return;
      }
      this.#push(r, ev);
    });
    if (req.timeout_ms !== null) {
      r.timers.add(setTimeout(() => {
        timedOut = true;
        spawner.signal(r.id, "SIGKILL");
      }, req.timeout_ms));
    }
    return r;
  }

  #inheritedEnv(): Record<string, string> {
    if (this.#inherited === null) {
      this.#inherited = {};
      for (const k of INHERITED) {
        const v = Deno.env.get(k);
        if (v !== undefined) this.#inherited[k] = v;
      }
    }
    return this.#inherited;
  }

  /**
   * A spawner died: reap the groups it left from a new one (its tasks are
   * told they are lost), then say so. In that order: a plugin that exits on
   * the news closes the pool first (`close` lets the new spawner take the
   * reap requests before it ends), so the groups do not wait for its next
   * incarnation, which may never come (crash budget spent, node stopping).
   */
  #died(s: Spawner, reason: string, orphans: number[]): void {
    if (this.#spawner !== s) return; // closed on purpose
    this.#spawner = null;
    if (orphans.length > 0) {
      try {
        this.reap(orphans);
      } catch {
        // no new spawner either: the next Spawn says why
      }
    }
    this.#options.onSpawnerDeath?.(reason);
  }

  #forget(key: string): void {
    // Keep finished workers briefly so a late re-attach still sees the exit.
    Deno.unrefTimer(setTimeout(() => this.#running.delete(key), 60_000));
  }
}
