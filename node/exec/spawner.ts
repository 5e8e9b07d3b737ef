/**
 * The pool's side of its spawner (spawner.pl): one long-lived perl process
 * per pool that forks, calls setsid() and execs each task, so a task costs
 * one exec and leads its own session and process group without Deno forking
 * itself (Deno has no setsid/setpgid spawn option; `detached` forks all of
 * Deno). The wire format is described at the top of spawner.pl.
 * @module
 */
import type { WorkerEvent } from "./contracts.ts";

/** What a task is started with. */
export interface SpawnerRequest {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

/** Options of {@linkcode Spawner.start}. */
export interface SpawnerOptions {
  /** The perl interpreter. @default "perl" (found on PATH) */
  perl?: string;
  /**
   * Where the spawner keeps the live process groups (a JSON array of pgids)
   * for reaping after a crash: at start it SIGKILLs the groups the file
   * names, and it removes the file when it ends normally. `null`: not kept.
   * @default null
   */
  stateFile?: string | null;
  /** Told which recorded groups the spawner SIGKILLed at start. @default nothing */
  onReaped?: (pgids: number[]) => void;
  /**
   * Told first when the spawner dies, with why and the process groups of the
   * tasks it still ran (nobody reaps those now); then each of those tasks
   * gets its `worker lost` exit. @default nothing
   */
  onDeath?: (reason: string, orphans: number[]) => void;
}

/** Signals a Kill may send, by number (Linux). */
const SIGNALS = { SIGTERM: 15, SIGKILL: 9 } as const;

/** Linux signal names by number (the same on x86_64 and aarch64). */
const SIGNAL_NAMES = [
  "",
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

/** setsid(2) and close(2) by architecture: the spawner loads no modules. */
const SYSCALLS: Record<string, [setsid: number, close: number]> = {
  x86_64: [112, 3],
  aarch64: [157, 57],
};

const SCRIPT = new URL("./spawner.pl", import.meta.url);
/** Bytes of the spawner's stdout read at once: its largest output frame (64 KiB of data plus the header) in one read. */
const READ_BYTES = 65536 + 9;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** One perl spawner: tasks in, their events out, until it dies. */
export class Spawner {
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #tasks = new Map<number, (ev: WorkerEvent) => void>();
  /** Started pids of the running tasks, by id. */
  #pids = new Map<number, number>();
  #onDeath?: (reason: string, orphans: number[]) => void;
  #onReaped?: (pgids: number[]) => void;
  #nextId = 1;
  #dead: string | null = null;
  /** Resolves with the reason once the spawner is gone (every task was told). */
  readonly closed: Promise<string>;
  /** The spawner's pid (tests kill it to check what its death does). */
  readonly pid: number;

  private constructor(child: Deno.ChildProcess, options: SpawnerOptions) {
    this.#child = child;
    this.#onDeath = options.onDeath;
    this.#onReaped = options.onReaped;
    this.pid = child.pid;
    this.#stdin = child.stdin.getWriter();
    this.closed = this.#read();
  }

  /** Starts a spawner; throws when perl cannot be run. */
  static start(options: SpawnerOptions = {}): Spawner {
    const script = SCRIPT.protocol === "file:"
      ? decodeURIComponent(SCRIPT.pathname)
      : null;
    if (script === null) {
      throw new Error(`spawner: ${SCRIPT} is not a local file`);
    }
    const nrs = SYSCALLS[Deno.build.arch];
    if (!nrs) {
      throw new Error(`spawner: no syscall numbers for ${Deno.build.arch}`);
    }
    const child = new Deno.Command(options.perl ?? "perl", {
      args: [
        script,
        ...nrs.map(String),
        ...(options.stateFile ? [options.stateFile] : []),
      ],
      clearEnv: true,
      env: {},
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return new Spawner(child, options);
  }

  /** Whether the spawner has died (no task can start on it any more). */
  get dead(): boolean {
    return this.#dead !== null;
  }

  /**
   * Starts a task; `onEvent` gets started/stdout/stderr and, last, exactly
   * one exit. Returns the task's id on this spawner (for {@linkcode signal}).
   */
  spawn(req: SpawnerRequest, onEvent: (ev: WorkerEvent) => void): number {
    const id = this.#nextId++;
    const bad = [req.cwd, ...req.argv, ...Object.entries(req.env).flat()]
      .find((s) => s.includes("\0"));
    const badKey = Object.keys(req.env).find((k) =>
      k === "" || k.includes("=")
    );
    if (req.argv.length === 0 || bad !== undefined || badKey !== undefined) {
      const what = req.argv.length === 0
        ? "an empty argv"
        : bad !== undefined
        ? "a NUL byte in argv, env or cwd"
        : `the env name ${JSON.stringify(badKey)}`;
      queueMicrotask(() =>
        onEvent({
          exit: { code: null, signal: null, error: `spawn failed: ${what}` },
        })
      );
      return id;
    }
    if (this.#dead !== null) {
      queueMicrotask(() => onEvent(this.#lostExit()));
      return id;
    }
    this.#tasks.set(id, onEvent);
    const env = Object.entries(req.env).map(([k, v]) => `${k}=${v}`);
    const body = enc.encode(
      [req.cwd, String(req.argv.length), ...req.argv, ...env].join("\0"),
    );
    this.#send("S", id, body);
    return id;
  }

  /** Signals a task's whole group; a no-op once it has exited. */
  signal(id: number, sig: keyof typeof SIGNALS): void {
    if (this.#tasks.has(id)) this.#send("K", id, Uint8Array.of(SIGNALS[sig]));
  }

  /** SIGKILLs a process group that is none of this spawner's tasks (reaping after a crash). */
  reap(pgid: number): void {
    if (Number.isInteger(pgid) && pgid > 1) {
      this.#send("R", pgid, new Uint8Array());
    }
  }

  /** Ends the spawner: it SIGKILLs every group still running, then exits. */
  async close(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    await this.closed;
  }

  #send(op: string, id: number, body: Uint8Array): void {
    const frame = new Uint8Array(9 + body.length);
    const v = new DataView(frame.buffer);
    v.setUint32(0, 5 + body.length);
    frame[4] = op.charCodeAt(0);
    v.setUint32(5, id);
    frame.set(body, 9);
    // Writes queue in order; a failure means the spawner died, which #read reports.
    this.#stdin.write(frame).catch(() => {});
  }

  #lostExit(): WorkerEvent {
    return {
      exit: {
        code: null,
        signal: null,
        error: `worker lost: the pool's spawner died (${this.#dead})`,
      },
    };
  }

  async #read(): Promise<string> {
    // One buffer, read into again and again (a BYOB reader hands it back
    // each time): the default reader allocated a fresh 64 KiB chunk per
    // read, two or more per task, and the GC of those was a sixth of the
    // pool plugin's CPU. Bytes kept past a read (a partial frame, a task's
    // output) are copied out of it first.
    let ab = new ArrayBuffer(READ_BYTES);
    let pending: Uint8Array = new Uint8Array(0); // a partial frame, copied
    const reader = this.#child.stdout.getReader({ mode: "byob" });
    try {
      for (;;) {
        const { value, done } = await reader.read(new Uint8Array(ab));
        if (done || value === undefined) break;
        ab = value.buffer as ArrayBuffer;
        const buf = pending.length === 0 ? value : concat(pending, value);
        let off = 0;
        while (buf.length - off >= 9) {
          const v = new DataView(buf.buffer, buf.byteOffset + off);
          const len = v.getUint32(5);
          if (buf.length - off < 9 + len) break;
          this.#frame(
            String.fromCharCode(buf[off]),
            v.getUint32(1),
            buf.subarray(off + 9, off + 9 + len),
          );
          off += 9 + len;
        }
        pending = off === buf.length ? new Uint8Array(0) : buf.slice(off);
      }
    } catch {
      // the pipe broke: the spawner is gone, its status says why
    } finally {
      reader.releaseLock();
    }
    const st = await this.#child.status;
    this.#dead = st.signal ? `killed by ${st.signal}` : `exit code ${st.code}`;
    const lost = [...this.#tasks.values()];
    const orphans = [...this.#pids.values()];
    this.#tasks.clear();
    this.#pids.clear();
    this.#onDeath?.(this.#dead, orphans);
    for (const onEvent of lost) onEvent(this.#lostExit());
    return this.#dead;
  }

  #frame(kind: string, id: number, data: Uint8Array): void {
    if (kind === "W") {
      this.#onReaped?.(dec.decode(data).split(",").map(Number));
      return;
    }
    const onEvent = this.#tasks.get(id);
    if (!onEvent) return;
    switch (kind) {
      case "P": {
        const pid = Number(dec.decode(data));
        this.#pids.set(id, pid);
        onEvent({ started: { pid } });
        return;
      }
      // Copied: `data` is a view into the read buffer, reused by the next read.
      case "O":
        onEvent({ stdout: data.slice() });
        return;
      case "E":
        onEvent({ stderr: data.slice() });
        return;
      case "F":
        this.#tasks.delete(id);
        this.#pids.delete(id);
        onEvent({
          exit: {
            code: null,
            signal: null,
            error: `spawn failed: ${dec.decode(data)}`,
          },
        });
        return;
      case "X": {
        this.#tasks.delete(id);
        this.#pids.delete(id);
        const status = Number(dec.decode(data));
        const sig = status & 0x7f;
        onEvent({
          exit: sig
            ? {
              code: null,
              signal: SIGNAL_NAMES[sig] ?? `SIG${sig}`,
              error: null,
            }
            : { code: status >> 8, signal: null, error: null },
        });
        return;
      }
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
