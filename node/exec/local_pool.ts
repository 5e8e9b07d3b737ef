/**
 * Reference pool: local processes, each in its own process group so a kill or
 * timeout takes the whole tree, and the group is reaped when the leader exits
 * so no task leaves a process behind.
 */
import type {
  KillRequest,
  Pool,
  SpawnRequest,
  WorkerEvent,
} from "./contracts.ts";

interface Running {
  pid: number;
  events: WorkerEvent[];
  done: boolean;
  waiters: Set<() => void>;
  killTimer?: ReturnType<typeof setTimeout>;
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

export class LocalPool implements Pool {
  #running = new Map<string, Running>();

  spawn(req: SpawnRequest): AsyncIterable<WorkerEvent> {
    const key = `${req.task_id}\x1f${req.claim_token}`;
    let r = this.#running.get(key);
    if (!r) {
      r = { pid: 0, events: [], done: false, waiters: new Set() };
      this.#running.set(key, r);
      this.#start(key, r, req);
    }
    return this.#follow(r);
  }

  async kill(req: KillRequest): Promise<void> {
    const r = this.#running.get(`${req.task_id}\x1f${req.claim_token}`);
    if (!r || r.done || r.pid === 0) return;
    signalGroup(r.pid, req.grace_ms > 0 ? "SIGTERM" : "SIGKILL");
    if (req.grace_ms > 0) {
      r.killTimer = setTimeout(
        () => signalGroup(r.pid, "SIGKILL"),
        req.grace_ms,
      );
    }
    await Promise.resolve();
  }

  /** Replays every event so far, then follows until exit: re-attach is a second Spawn. */
  async *#follow(r: Running): AsyncIterable<WorkerEvent> {
    let i = 0;
    for (;;) {
      while (i < r.events.length) yield r.events[i++];
      if (r.done) return;
      await new Promise<void>((resolve) => r.waiters.add(resolve));
    }
  }

  #push(r: Running, ev: WorkerEvent): void {
    r.events.push(ev);
    if ("exit" in ev) r.done = true;
    for (const w of r.waiters) w();
    r.waiters.clear();
  }

  async #start(key: string, r: Running, req: SpawnRequest): Promise<void> {
    const argv = req.argv ??
      (req.shell !== null ? ["sh", "-c", req.shell] : null);
    if (!argv) {
      this.#push(r, {
        exit: {
          code: null,
          signal: null,
          error: "the reference pool needs `run`; this task has only a prompt",
        },
      });
      this.#forget(key);
      return;
    }
    const env: Record<string, string> = {};
    for (const k of INHERITED) {
      const v = Deno.env.get(k);
      if (v !== undefined) env[k] = v;
    }
    Object.assign(env, req.env);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        cwd: req.workdir,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        detached: true, // own session and process group: pid == pgid
      }).spawn();
    } catch (e) {
      this.#push(r, {
        exit: {
          code: null,
          signal: null,
          error: `spawn failed: ${(e as Error).message}`,
        },
      });
      this.#forget(key);
      return;
    }
    r.pid = child.pid;
    this.#push(r, { started: { pid: child.pid } });
    let timedOut = false;
    const timer = req.timeout_ms === null ? undefined : setTimeout(() => {
      timedOut = true;
      signalGroup(child.pid, "SIGKILL");
    }, req.timeout_ms);
    const pump = async (
      stream: ReadableStream<Uint8Array>,
      kind: "stdout" | "stderr",
    ) => {
      for await (const chunk of stream) {
        this.#push(
          r,
          kind === "stdout" ? { stdout: chunk } : { stderr: chunk },
        );
      }
    };
    const pumps = Promise.all([
      pump(child.stdout, "stdout"),
      pump(child.stderr, "stderr"),
    ]);
    // A backgrounded grandchild can hold the pipes open after the leader exits:
    // reap the group once the leader is gone, then the pipes close.
    const status = await child.status;
    signalGroup(child.pid, "SIGKILL");
    await pumps;
    clearTimeout(timer);
    clearTimeout(r.killTimer);
    this.#push(r, {
      exit: {
        code: status.signal ? null : status.code,
        signal: status.signal ?? null,
        error: timedOut ? `timeout after ${req.timeout_ms}ms` : null,
      },
    });
    this.#forget(key);
  }

  #forget(key: string): void {
    // Keep finished workers briefly so a late re-attach still sees the exit.
    Deno.unrefTimer(setTimeout(() => this.#running.delete(key), 60_000));
  }
}

function signalGroup(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(-pid, sig);
  } catch {
    // ESRCH: the group is already gone
  }
}
