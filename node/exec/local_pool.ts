/**
 * Reference pool: local processes, each in its own process group so a kill or
 * timeout takes the whole tree, and the group is reaped when the leader exits
 * so no task leaves a process behind.
 *
 * Invariant: the pid a worker reports (`started.pid`, what the pool plugin
 * records for reaping) is its session and process-group id, so
 * `kill(-pid, sig)` reaches the whole tree, grandchildren included.
 *
 * How a worker gets there. `Deno.Command(..., { detached: true })` runs
 * setsid() in a pre-exec hook, which makes Rust's std give up posix_spawn
 * (clone(CLONE_VM|CLONE_VFORK)) for a full fork() of this Deno process, whose
 * cost grows with its memory. So by default the worker is a plain
 * (posix_spawn) `Deno.Command` of util-linux `setsid -- argv…`: that child is
 * in our process group, not a group leader, so setsid calls setsid() and
 * execs argv in place, without forking: same pid, pid == sid == pgid, and the
 * exit status (signals included) is the task's own. setsid adds nothing to
 * the environment. bench/spawn.ts, `true` per second, 2 vCPU under load 3–10:
 * this pool one at a time 35 → 75 (four at a time 47 → 85); bare spawns:
 * detached 49–78, 29 with a 200 MiB parent, setsid wrapper 94–127, unaffected
 * by the parent's size (plain Deno.Command 134–265, no group: reference only).
 * A probe checks setsid keeps the pid as the group id; without a usable setsid
 * the pool falls back to `detached`.
 *
 * Two windows of the wrapper are covered here: until setsid() has run, the
 * group does not exist yet (a kill then signals the pid alone, which has not
 * exec'd the task, so it is the whole tree), and a program setsid cannot exec
 * ends as `spawn failed` (exit 126/127 with setsid's message), as with
 * `detached` — except that `started` came first and the message is in stderr.
 * One visible difference: the program gets argv[0] as given (setsid's execvp),
 * where Deno passes the path it resolved.
 */
import type {
  KillRequest,
  Pool,
  SpawnRequest,
  WorkerEvent,
} from "./contracts.ts";

interface Running {
  pid: number;
  /** The leader has exited and was reaped: its pid may be reused. */
  exited: boolean;
  events: WorkerEvent[];
  done: boolean;
  waiters: Set<() => void>;
  killTimers: Set<ReturnType<typeof setTimeout>>;
  /** A Kill that came before the process had a pid. */
  pendingKill?: KillRequest;
}

/** How a worker gets its own session and process group. */
type Launcher = { kind: "setsid"; path: string } | { kind: "detached" };

/** Options of {@linkcode LocalPool}. */
export interface LocalPoolOptions {
  /**
   * `auto`: the setsid wrapper if the probe passes, else `detached`;
   * `detached`: always Deno's detached spawn (a fork).
   * @default "auto"
   */
  launcher?: "auto" | "detached";
  /** setsid binaries to probe, in order. @default ["/usr/bin/setsid", "/bin/setsid"] */
  setsid_paths?: string[];
  /** Where the one-line fallback warning goes. @default console.error */
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
  #launcher?: Promise<Launcher>;

  constructor(options: LocalPoolOptions = {}) {
    this.#options = options;
  }

  spawn(req: SpawnRequest): AsyncIterable<WorkerEvent> {
    const key = `${req.task_id}\x1f${req.claim_token}`;
    let r = this.#running.get(key);
    if (!r && this.#killedEarly.delete(key)) {
      return (async function* () {
        yield { exit: { code: null, signal: "SIGKILL", error: null } };
      })();
    }
    if (!r) {
      r = {
        pid: 0,
        exited: false,
        events: [],
        done: false,
        waiters: new Set(),
        killTimers: new Set(),
      };
      this.#running.set(key, r);
      this.#start(key, r, req);
    }
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
    if (r.done) return;
    if (r.pid === 0) r.pendingKill = req; // still starting: sent once it has a pid
    else this.#signal(r, req);
    await Promise.resolve();
  }

  #signal(r: Running, req: KillRequest): void {
    signalWorker(r, req.grace_ms > 0 ? "SIGTERM" : "SIGKILL");
    if (req.grace_ms > 0) {
      r.killTimers.add(
        setTimeout(() => signalWorker(r, "SIGKILL"), req.grace_ms),
      );
    }
  }

  /** Which launcher workers use, probed once. */
  #launch(): Promise<Launcher> {
    return this.#launcher ??= (async (): Promise<Launcher> => {
      if (this.#options.launcher === "detached") return { kind: "detached" };
      const paths = this.#options.setsid_paths ??
        ["/usr/bin/setsid", "/bin/setsid"];
      for (const path of paths) {
        if (await setsidKeepsPid(path)) return { kind: "setsid", path };
      }
      (this.#options.warn ?? console.error)(
        `local_pool: no setsid that execs in place (${
          paths.join(", ")
        }): workers start with Deno's detached spawn (a fork, slower)`,
      );
      return { kind: "detached" };
    })();
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
    const how = await this.#launch();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(how.kind === "setsid" ? how.path : argv[0], {
        args: how.kind === "setsid" ? ["--", ...argv] : argv.slice(1),
        cwd: req.workdir,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        // own session and process group: pid == pgid (setsid: see the top)
        detached: how.kind === "detached",
      }).spawn();
    } catch (e) {
      let msg = (e as Error).message;
      if (how.kind === "setsid") msg = msg.replace(how.path, argv[0]);
      this.#push(r, {
        exit: { code: null, signal: null, error: `spawn failed: ${msg}` },
      });
      this.#forget(key);
      return;
    }
    r.pid = child.pid;
    this.#push(r, { started: { pid: child.pid } });
    if (r.pendingKill) this.#signal(r, r.pendingKill);
    let timedOut = false;
    const timer = req.timeout_ms === null ? undefined : setTimeout(() => {
      timedOut = true;
      signalWorker(r, "SIGKILL");
    }, req.timeout_ms);
    let errHead = ""; // the start of stderr, for setsid's own exec failure
    const pump = async (
      stream: ReadableStream<Uint8Array>,
      kind: "stdout" | "stderr",
    ) => {
      for await (const chunk of stream) {
        if (kind === "stderr" && errHead.length < 512) {
          errHead += new TextDecoder().decode(chunk.subarray(0, 512));
        }
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
    r.exited = true;
    signalGroup(child.pid, "SIGKILL");
    await pumps;
    clearTimeout(timer);
    for (const t of r.killTimers) clearTimeout(t);
    let code = status.signal ? null : status.code;
    let error = timedOut ? `timeout after ${req.timeout_ms}ms` : null;
    // setsid could not exec the program (126: not executable, 127: not found).
    if (
      how.kind === "setsid" && (code === 126 || code === 127) &&
      errHead.startsWith("setsid: ")
    ) {
      code = null;
      error = `spawn failed: ${errHead.slice(8).split("\n")[0]}`;
    }
    this.#push(r, {
      exit: { code, signal: status.signal ?? null, error },
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

/** Signals a running worker's group, or the worker alone if it has no group yet. */
function signalWorker(r: Running, sig: Deno.Signal): void {
  try {
    Deno.kill(-r.pid, sig);
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return;
  }
  // No such group while the leader lives: the setsid wrapper has not called
  // setsid() yet, so it has not exec'd the task and has no children.
  if (r.exited) return; // gone (and the pid may be reused)
  try {
    Deno.kill(r.pid, sig);
  } catch {
    // exited meanwhile
  }
}

/**
 * Whether `setsid -- prog` at `path`, started by a plain spawn, makes its pid
 * a process-group id and execs in place (util-linux and busybox do when the
 * caller is not a group leader): the group of the pid must take a SIGKILL
 * that the pid itself dies of.
 */
async function setsidKeepsPid(path: string): Promise<boolean> {
  const PATH = Deno.env.get("PATH");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(path, {
      args: ["--", "sleep", "5"],
      env: PATH === undefined ? {} : { PATH },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch {
    return false;
  }
  let exited = false;
  const status = child.status.finally(() => exited = true);
  let grouped = false;
  const deadline = Date.now() + 2000;
  while (!exited && !grouped && Date.now() < deadline) {
    try {
      Deno.kill(-child.pid, "SIGKILL");
      grouped = true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
  if (!grouped && !exited) {
    try {
      Deno.kill(child.pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  return grouped && (await status).signal === "SIGKILL";
}
