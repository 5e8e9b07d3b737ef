/**
 * The plugin supervisor (SPEC §7): starts one plugin process, waits for its
 * `BOI_READY`, settles the protocol by Handshake, probes Health, restarts it
 * after a crash within a crash budget, and stops it without orphans. It knows
 * nothing of etcd: the node stores what `onCrash`/`onState` report.
 * @module
 */
import { type PluginKind, PROTO_MAJOR, PROTO_MINOR } from "../../proto/mod.ts";
import { PluginConnection } from "../exec/grpc_client.ts";
import type { HandshakeResponse } from "./contracts.ts";

/**
 * Where a plugin is in its life:
 * - `starting` — spawned, waiting for `BOI_READY` and the handshake;
 * - `ready` — serving and healthy;
 * - `start_failed` — no `BOI_READY` in time, exited early, or the handshake
 *   failed; counted as a crash and retried;
 * - `crashed` — exited unexpectedly; restarted after `restart_delay_ms`;
 * - `unhealthy` — `health_failures` probes failed in a row; killed and restarted;
 * - `refused` — speaks another protocol major; not restarted until `restart()`;
 * - `unstable` — the crash budget is spent; not restarted until `restart()`
 *   or the window passes;
 * - `stopping`, `stopped` — by `stop()`.
 */
export type PluginState =
  | "starting"
  | "ready"
  | "start_failed"
  | "crashed"
  | "unhealthy"
  | "refused"
  | "unstable"
  | "stopping"
  | "stopped";

/** Everything the node may want to publish about a plugin. */
export interface PluginStatus {
  /** Configured name, e.g. `pool`. */
  name: string;
  kind: PluginKind;
  state: PluginState;
  /**
   * Why the plugin is in this state, e.g. `ready_timeout`,
   * `proto_version_mismatch: plugin 2.0, core 1.0`, `exited: code 1`.
   */
  reason: string | null;
  /** Incarnation number of the current (or last) process. */
  incarnation: number;
  /** Pid of the current process, null when none runs. */
  pid: number | null;
  /** Crash times (ms since epoch) inside the window, oldest first. */
  crashes: number[];
  /** From the last successful handshake. */
  plugin_name: string | null;
  plugin_version: string | null;
  proto_major: number | null;
  proto_minor: number | null;
  capabilities: string[];
  /** e.g. a newer protocol minor than core's. */
  warnings: string[];
  /** When the state was entered (ms since epoch). */
  since: number;
}

/** Log sink; node/shell/log.ts's Logger fits. */
export interface SupervisorLog {
  log(
    level: "debug" | "info" | "warn" | "error",
    msg: string,
    fields?: Record<string, unknown>,
  ): void;
}

/** Which plugin to run. */
export interface PluginSpec {
  /** Unique per node; names the socket and data dir, e.g. `pool`. */
  name: string;
  kind: PluginKind;
  /**
   * The command. `{socket}`, `{data_dir}` (the plugin's own), `{node_id}`,
   * `{name}` and `{kind}` are replaced, so narrow permissions can name the
   * socket: `--allow-net=unix:{socket}`.
   */
  argv: string[];
  /** Extra environment (same placeholders). */
  env?: Record<string, string>;
  /** Working directory. @default the node's */
  cwd?: string;
}

/** Options of {@linkcode PluginSupervisor}. */
export interface PluginSupervisorOptions {
  plugin: PluginSpec;
  node_id: string;
  /** The node's data dir: the socket is `<data_dir>/plugins/<name>.sock`. */
  data_dir: string;
  /** Sent in the handshake. @default "dev" */
  core_version?: string;
  /** @default 10000 */
  ready_timeout_ms?: number;
  /** @default 5000 */
  handshake_timeout_ms?: number;
  /** @default 10000 */
  health_interval_ms?: number;
  /** Deadline of one probe. @default 5000 (at most `health_interval_ms`) */
  health_timeout_ms?: number;
  /** Failed probes in a row that make it unhealthy. @default 3 */
  health_failures?: number;
  /** Crashes tolerated inside the window; one more makes it unstable. @default 3 */
  crash_budget?: number;
  /** @default 300000 (5 minutes) */
  crash_window_ms?: number;
  /** Pause between a crash and the restart. @default 1000 */
  restart_delay_ms?: number;
  /** SIGTERM (and stdin closed), then SIGKILL after this long. @default 5000 */
  shutdown_grace_ms?: number;
  /** Crash list to start from, e.g. read from etcd. @default [] */
  crashes?: number[];
  /** Number of the first incarnation. @default 1 */
  incarnation?: number;
  /**
   * Environment variables passed through from the node; everything else
   * (etcd endpoints, tokens) stays out.
   * @default PATH, HOME, USER, LANG, LC_ALL, TZ, TMPDIR, DENO_DIR, XDG_CACHE_HOME, NO_COLOR, BOI_LOG_LEVEL
   */
  inherit_env?: string[];
  /** Called with the whole list whenever a crash is added or the list is reset. */
  onCrash?: (crashes: number[]) => void | Promise<void>;
  /** Called on every state change. */
  onState?: (status: PluginStatus) => void | Promise<void>;
  /** @default JSON lines on stderr */
  log?: SupervisorLog;
}

/** Thrown by {@linkcode PluginSupervisor.connection} when the plugin cannot take calls. */
export class PluginUnavailableError extends Error {
  constructor(readonly plugin: string, readonly state: PluginState) {
    super(`plugin ${plugin} is ${state}`);
    this.name = "PluginUnavailableError";
  }
}

/** How a stop went: `forced` if SIGKILL was needed. */
export interface StopResult {
  forced: boolean;
  code: number | null;
  signal: string | null;
}

/** Variables a plugin inherits from the node unless `inherit_env` says otherwise. */
export const DEFAULT_INHERIT_ENV: readonly string[] = [
  "PATH",
  "HOME",
  "USER",
  "LANG",
  "LC_ALL",
  "TZ",
  "TMPDIR",
  "DENO_DIR",
  "XDG_CACHE_HOME",
  "NO_COLOR",
  "BOI_LOG_LEVEL",
];

/** Unix socket paths are limited to 107 bytes on Linux (108 with the NUL). */
const MAX_SOCKET_PATH = 107;

interface Incarnation {
  n: number;
  child: Deno.ChildProcess;
  /** Settles with the exit; never rejects. */
  exited: Promise<Deno.CommandStatus>;
  hasExited: boolean;
  /** Resolves when the `BOI_READY` line arrives. */
  ready: Promise<void>;
  /** Resolves when stdout and stderr are drained. */
  drained: Promise<unknown>;
  conn: PluginConnection | null;
}

type Outcome =
  | { kind: "ready" }
  | { kind: "failed"; reason: string }
  | { kind: "refused"; reason: string }
  | { kind: "wake" };

/** States that end a launch attempt. */
const SETTLED: ReadonlySet<PluginState> = new Set([
  "ready",
  "start_failed",
  "refused",
  "unstable",
  "stopped",
]);

const encoder = new TextEncoder();
const stderrLog: SupervisorLog = {
  log(level, msg, fields = {}) {
    const line = JSON.stringify({ ts: Date.now(), level, msg, ...fields });
    try {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // stderr closed
    }
  },
};

function timer(ms: number): { promise: Promise<"timer">; clear(): void } {
  let id: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<"timer">((resolve) => {
    id = setTimeout(() => resolve("timer"), Math.max(0, ms));
  });
  return { promise, clear: () => clearTimeout(id) };
}

function describeExit(s: Deno.CommandStatus): string {
  return s.signal ? `signal ${s.signal}` : `code ${s.code}`;
}

/**
 * Runs one plugin for its whole life. `start()` launches it, `restart()` is
 * `boi plugin restart`, `stop()` ends it (SIGTERM, grace, SIGKILL).
 */
export class PluginSupervisor {
  readonly name: string;
  readonly kind: PluginKind;
  /** The plugin's socket path (absolute). */
  readonly socket: string;
  /** The plugin's own data dir (absolute), `BOI_PLUGIN_DATA_DIR`. */
  readonly pluginDataDir: string;

  readonly #o: PluginSupervisorOptions;
  readonly #log: SupervisorLog;
  #status: PluginStatus;
  #inc: Incarnation | null = null;
  #nextIncarnation: number;
  #loop: Promise<void> | null = null;
  #wake = Promise.withResolvers<"wake">();
  #stopRequested = false;
  #restartRequested = false;
  #stopVia: "sigterm" | "stdin" = "sigterm";
  #lastStop: StopResult | null = null;
  #waiters = new Set<() => void>();
  /** Attempts that reached an outcome (ready, start_failed, refused, unstable, stopped). */
  #settled = 0;

  constructor(options: PluginSupervisorOptions) {
    this.#o = options;
    this.#log = options.log ?? stderrLog;
    this.name = options.plugin.name;
    this.kind = options.plugin.kind;
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(this.name)) {
      throw new Error(
        `plugin name must match ^[a-z0-9][a-z0-9_-]{0,62}$: got ${
          JSON.stringify(this.name)
        }`,
      );
    }
    if (options.plugin.argv.length === 0) {
      throw new Error(`plugin ${this.name}: argv is empty`);
    }
    const dataDir = absolute(options.data_dir);
    this.socket = `${dataDir}/plugins/${this.name}.sock`;
    this.pluginDataDir = `${dataDir}/plugins/${this.name}`;
    if (encoder.encode(this.socket).length > MAX_SOCKET_PATH) {
      throw new Error(
        `plugin ${this.name}: socket path is longer than ${MAX_SOCKET_PATH} bytes (use a shorter data dir): ${this.socket}`,
      );
    }
    this.#nextIncarnation = options.incarnation ?? 1;
    this.#status = {
      name: this.name,
      kind: this.kind,
      state: "stopped",
      reason: null,
      incarnation: 0,
      pid: null,
      crashes: this.#window(options.crashes ?? []),
      plugin_name: null,
      plugin_version: null,
      proto_major: null,
      proto_minor: null,
      capabilities: [],
      warnings: [],
      since: Date.now(),
    };
  }

  /** A copy of the current status. */
  get status(): PluginStatus {
    return structuredClone(this.#status);
  }

  /** Pid of the running plugin process, if any. */
  get pid(): number | null {
    return this.#inc && !this.#inc.hasExited ? this.#inc.child.pid : null;
  }

  /**
   * Launches the plugin and resolves with the status once the first attempt
   * settles (ready, start_failed, refused or unstable).
   */
  async start(): Promise<PluginStatus> {
    if (this.#loop) throw new Error(`plugin ${this.name} already started`);
    this.#stopRequested = false;
    this.#wake = Promise.withResolvers<"wake">();
    await Deno.mkdir(this.pluginDataDir, { recursive: true });
    // Counted before the loop starts: it may settle (unstable) synchronously.
    const target = this.#settled + 1;
    this.#loop = this.#run().catch(async (e) => {
      // A bug here must not leave the plugin running unsupervised.
      this.#log.log("error", "plugin supervisor failed", {
        plugin: this.name,
        error: (e as Error).stack ?? String(e),
      });
      await this.#terminate({ kill: true }).catch(() => {});
      this.#setState("stopped", `supervisor failed: ${(e as Error).message}`);
    });
    await this.#until(() => this.#settled >= target);
    return this.status;
  }

  /**
   * The connection of the ready incarnation. With `wait_ms`, waits that long
   * for a restart to finish; throws PluginUnavailableError otherwise.
   */
  async connection(
    options: { wait_ms?: number } = {},
  ): Promise<PluginConnection> {
    const waitMs = options.wait_ms ?? 0;
    if (this.#status.state !== "ready" && waitMs > 0 && this.#loop) {
      const t = timer(waitMs);
      await Promise.race([
        this.#until(() => {
          const s = this.#status.state;
          return s === "ready" || s === "refused" || s === "unstable" ||
            s === "stopped";
        }),
        t.promise,
      ]);
      t.clear();
    }
    const conn = this.#inc?.conn;
    if (this.#status.state !== "ready" || !conn) {
      throw new PluginUnavailableError(this.name, this.#status.state);
    }
    return conn;
  }

  /**
   * `boi plugin restart`: forgets the crash list and starts a fresh
   * incarnation (stopping the current one gracefully). Resolves once the new
   * incarnation's first attempt settles.
   */
  async restart(): Promise<PluginStatus> {
    if (!this.#loop) return await this.#resetAndStart();
    const target = this.#settled + 1;
    this.#restartRequested = true;
    this.#wake.resolve("wake");
    await this.#until(() => !this.#restartRequested && this.#settled >= target);
    return this.status;
  }

  /**
   * Stops the plugin: closes its stdin and sends SIGTERM, then SIGKILLs its
   * process group after `shutdown_grace_ms`. With `via: "stdin"` only stdin
   * is closed (the conformance check that a plugin exits on EOF).
   */
  async stop(
    options: { via?: "sigterm" | "stdin" } = {},
  ): Promise<StopResult | null> {
    this.#stopRequested = true;
    this.#stopVia = options.via ?? "sigterm";
    this.#wake.resolve("wake");
    await this.#loop;
    this.#loop = null;
    const r = this.#lastStop;
    this.#lastStop = null;
    return r;
  }

  async #resetAndStart(): Promise<PluginStatus> {
    this.#resetCrashes();
    return await this.start();
  }

  // ---- the life loop ----

  async #run(): Promise<void> {
    while (!this.#stopRequested) {
      if (this.#restartRequested) {
        this.#restartRequested = false;
        this.#resetCrashes();
      }
      // Budget spent (also from a crash list handed in at start).
      const until = this.#unstableUntil();
      if (until !== null) {
        this.#setState(
          "unstable",
          `${this.#status.crashes.length} crashes within ${this.#windowMs()} ms`,
        );
        const t = timer(until - Date.now());
        const r = await Promise.race([t.promise, this.#wake.promise]);
        t.clear();
        if (r === "wake") this.#renewWake();
        continue;
      }
      const outcome = await this.#launch();
      if (outcome.kind === "wake") {
        await this.#terminate();
        this.#renewWake();
        continue;
      }
      if (outcome.kind === "refused") {
        await this.#terminate();
        this.#setState("refused", outcome.reason);
        await this.#wake.promise;
        this.#renewWake();
        continue;
      }
      if (outcome.kind === "failed") {
        await this.#terminate({ kill: true });
        this.#crash("start_failed", outcome.reason);
        await this.#pause();
        continue;
      }
      const end = await this.#serve();
      if (end.kind === "wake") {
        await this.#terminate();
        this.#renewWake();
        continue;
      }
      if (end.kind === "unhealthy") {
        this.#setState("unhealthy", end.reason);
        await this.#terminate();
        this.#crash("unhealthy", end.reason);
      } else {
        await this.#terminate(); // already exited: close pipes, socket, channel
        this.#crash("crashed", end.reason);
      }
      await this.#pause();
    }
    await this.#terminate();
    this.#setState("stopped", "stopped");
  }

  /** Waits `restart_delay_ms` (cut short by stop/restart) unless the budget is spent. */
  async #pause(): Promise<void> {
    if (this.#unstableUntil() !== null) return;
    const t = timer(this.#o.restart_delay_ms ?? 1000);
    const r = await Promise.race([t.promise, this.#wake.promise]);
    t.clear();
    if (r === "wake") this.#renewWake();
  }

  /** Spawns an incarnation and takes it to ready: BOI_READY, then Handshake. */
  async #launch(): Promise<Outcome> {
    const n = this.#nextIncarnation++;
    await removeStaleSocket(this.socket);
    let inc: Incarnation;
    try {
      inc = this.#spawn(n);
    } catch (e) {
      return { kind: "failed", reason: `spawn: ${(e as Error).message}` };
    }
    this.#inc = inc;
    this.#status.incarnation = n;
    this.#status.pid = inc.child.pid;
    this.#setState("starting", null);

    const readyMs = this.#o.ready_timeout_ms ?? 10_000;
    const t = timer(readyMs);
    const r = await Promise.race([
      inc.ready.then(() => "ready" as const),
      inc.exited.then((s) => s),
      t.promise,
      this.#wake.promise,
    ]);
    t.clear();
    if (r === "wake") return { kind: "wake" };
    if (r === "timer") {
      return { kind: "failed", reason: `ready_timeout after ${readyMs} ms` };
    }
    if (r !== "ready") {
      return {
        kind: "failed",
        reason: `exited before BOI_READY: ${describeExit(r)}`,
      };
    }

    const conn = new PluginConnection(this.kind, this.socket);
    inc.conn = conn;
    const hsMs = this.#o.handshake_timeout_ms ?? 5000;
    let hs: HandshakeResponse | Deno.CommandStatus | "wake";
    try {
      hs = await Promise.race([
        conn.handshake({
          core_version: this.#o.core_version ?? "dev",
          proto_major: PROTO_MAJOR,
          proto_minor: PROTO_MINOR,
        }, { timeout_ms: hsMs, corr_id: `${this.#pluginId(n)}.handshake` }),
        inc.exited,
        this.#wake.promise,
      ]);
    } catch (e) {
      return { kind: "failed", reason: `handshake: ${(e as Error).message}` };
    }
    if (hs === "wake") return { kind: "wake" };
    if (!("plugin_name" in hs)) {
      return {
        kind: "failed",
        reason: `exited during handshake: ${describeExit(hs)}`,
      };
    }
    Object.assign(this.#status, {
      plugin_name: hs.plugin_name,
      plugin_version: hs.plugin_version,
      proto_major: hs.proto_major,
      proto_minor: hs.proto_minor,
      capabilities: hs.capabilities,
      warnings: [],
    });
    if (hs.proto_major !== PROTO_MAJOR) {
      return {
        kind: "refused",
        reason:
          `proto_version_mismatch: plugin ${hs.proto_major}.${hs.proto_minor}, core ${PROTO_MAJOR}.${PROTO_MINOR}`,
      };
    }
    if (hs.proto_minor > PROTO_MINOR) {
      const w =
        `plugin speaks proto ${hs.proto_major}.${hs.proto_minor}, newer than core's ${PROTO_MAJOR}.${PROTO_MINOR}: newer calls are unused`;
      this.#status.warnings.push(w);
      this.#log.log("warn", w, { plugin: this.name });
    }
    this.#setState("ready", null);
    return { kind: "ready" };
  }

  /** Probes health until the process exits, turns unhealthy, or stop/restart wakes us. */
  async #serve(): Promise<
    { kind: "exit" | "unhealthy"; reason: string } | { kind: "wake" }
  > {
    const inc = this.#inc!;
    const intervalMs = this.#o.health_interval_ms ?? 10_000;
    const timeoutMs = Math.min(this.#o.health_timeout_ms ?? 5000, intervalMs);
    const limit = this.#o.health_failures ?? 3;
    let failures = 0;
    for (;;) {
      const t = timer(intervalMs);
      const r = await Promise.race([t.promise, inc.exited, this.#wake.promise]);
      t.clear();
      if (r === "wake") return { kind: "wake" };
      if (r !== "timer") {
        return { kind: "exit", reason: `exited: ${describeExit(r)}` };
      }
      let problem: string | null = null;
      const probe = inc.conn!.health({
        timeout_ms: timeoutMs,
        corr_id: `${this.#pluginId(inc.n)}.health`,
      }).then(
        (h) => h.ok ? null : `not ok: ${h.detail}`,
        (e: Error) => e.message,
      );
      const p = await Promise.race([probe, inc.exited, this.#wake.promise]);
      if (p === "wake") return { kind: "wake" };
      if (typeof p === "object" && p !== null) {
        return { kind: "exit", reason: `exited: ${describeExit(p)}` };
      }
      problem = p;
      if (problem === null) {
        failures = 0;
        continue;
      }
      failures++;
      this.#log.log("warn", "plugin health probe failed", {
        plugin: this.name,
        failures,
        problem,
      });
      if (failures >= limit) {
        return {
          kind: "unhealthy",
          reason: `${failures} health probes failed in a row; last: ${problem}`,
        };
      }
    }
  }

  #spawn(n: number): Incarnation {
    const spec = this.#o.plugin;
    const fill = (s: string) =>
      s.replaceAll("{socket}", this.socket)
        .replaceAll("{data_dir}", this.pluginDataDir)
        .replaceAll("{node_id}", this.#o.node_id)
        .replaceAll("{name}", this.name)
        .replaceAll("{kind}", this.kind);
    // No colours in logs we parse (Deno's own warnings included).
    const env: Record<string, string> = { NO_COLOR: "1" };
    for (const k of this.#o.inherit_env ?? DEFAULT_INHERIT_ENV) {
      const v = Deno.env.get(k);
      if (v !== undefined) env[k] = v;
    }
    for (const [k, v] of Object.entries(spec.env ?? {})) env[k] = fill(v);
    Object.assign(env, {
      BOI_PLUGIN_ID: this.#pluginId(n),
      BOI_PLUGIN_SOCKET: this.socket,
      BOI_PLUGIN_KIND: this.kind,
      BOI_PLUGIN_DATA_DIR: this.pluginDataDir,
    });
    const argv = spec.argv.map(fill);
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: spec.cwd,
      env,
      clearEnv: true,
      stdin: "piped", // the lifeline: closed when we die, the plugin exits
      stdout: "piped",
      stderr: "piped",
      // Its own process group: terminal signals do not reach it, and a kill
      // of the group takes its helpers too.
      detached: true,
    }).spawn();
    const inc: Incarnation = {
      n,
      child,
      exited: Promise.resolve() as unknown as Promise<Deno.CommandStatus>,
      hasExited: false,
      ready: Promise.resolve(),
      drained: Promise.resolve(),
      conn: null,
    };
    inc.exited = child.status.then((s) => {
      inc.hasExited = true;
      return s;
    });
    const ready = Promise.withResolvers<void>();
    inc.ready = ready.promise;
    const fields = { plugin: this.name, incarnation: n };
    let announced = false;
    inc.drained = Promise.all([
      forEachLine(child.stdout, (line) => {
        if (!announced && line === "BOI_READY") {
          announced = true;
          ready.resolve();
        } else {
          this.#log.log("debug", "plugin stdout", { ...fields, line });
        }
      }),
      forEachLine(child.stderr, (line) => this.#pluginLog(line, fields)),
    ]);
    this.#log.log("info", "plugin spawned", { ...fields, pid: child.pid });
    return inc;
  }

  /** Re-emits a plugin's stderr line: its JSON fields kept, non-JSON as `line`. */
  #pluginLog(line: string, fields: Record<string, unknown>): void {
    if (line.trim() === "") return;
    try {
      const o = JSON.parse(line);
      if (o && typeof o === "object" && !Array.isArray(o)) {
        const { level, msg, ts: _ts, ...rest } = o as Record<string, unknown>;
        const lv = level === "debug" || level === "warn" || level === "error"
          ? level
          : "info";
        this.#log.log(lv, String(msg ?? "plugin log"), { ...rest, ...fields });
        return;
      }
    } catch {
      // not JSON
    }
    this.#log.log("info", "plugin stderr", { ...fields, line });
  }

  /**
   * Ends the current incarnation: stdin closed and SIGTERM, SIGKILL to the
   * group after the grace (at once with `kill`); waits for exit and drain.
   */
  async #terminate(options: { kill?: boolean } = {}): Promise<void> {
    const inc = this.#inc;
    if (!inc) return;
    this.#inc = null;
    // Closed first: calls in flight still get their answers (a pool's streams
    // their exits), and no new call reaches a plugin on its way out.
    inc.conn?.close();
    let forced = false;
    if (!inc.hasExited) {
      if (this.#stopRequested || this.#restartRequested) {
        this.#setState("stopping", this.#stopRequested ? "stop" : "restart");
      }
      const via = this.#stopRequested ? this.#stopVia : "sigterm";
      await inc.child.stdin.close().catch(() => {});
      if (options.kill) {
        killGroup(inc.child.pid, "SIGKILL");
        forced = true;
      } else {
        if (via === "sigterm") {
          try {
            Deno.kill(inc.child.pid, "SIGTERM");
          } catch {
            // already gone
          }
        }
        const t = timer(this.#o.shutdown_grace_ms ?? 5000);
        const r = await Promise.race([inc.exited, t.promise]);
        t.clear();
        if (r === "timer") {
          this.#log.log("warn", "plugin ignored shutdown: SIGKILL", {
            plugin: this.name,
            incarnation: inc.n,
          });
          killGroup(inc.child.pid, "SIGKILL");
          forced = true;
        }
      }
    } else {
      await inc.child.stdin.close().catch(() => {});
    }
    const s = await inc.exited;
    // Helpers it left in its group go with it.
    killGroup(inc.child.pid, "SIGKILL");
    await inc.drained;
    this.#status.pid = null;
    if (this.#stopRequested) {
      this.#lastStop = {
        forced,
        code: s.signal ? null : s.code,
        signal: s.signal,
      };
    }
    await removeStaleSocket(this.socket);
  }

  // ---- crash bookkeeping ----

  #windowMs(): number {
    return this.#o.crash_window_ms ?? 300_000;
  }

  #window(crashes: number[]): number[] {
    const from = Date.now() - this.#windowMs();
    return crashes.filter((t) => t > from).sort((a, b) => a - b);
  }

  /** When the budget is spent: the time it frees up again; else null. */
  #unstableUntil(): number | null {
    const crashes = this.#window(this.#status.crashes);
    this.#status.crashes = crashes;
    const budget = this.#o.crash_budget ?? 3;
    if (crashes.length <= budget) return null;
    // Back under budget once all but `budget` crashes have left the window.
    return crashes[crashes.length - budget - 1] + this.#windowMs() + 1;
  }

  #crash(state: "start_failed" | "crashed" | "unhealthy", reason: string) {
    this.#status.crashes = this.#window([
      ...this.#status.crashes,
      Date.now(),
    ]);
    this.#emitCrashes();
    this.#setState(state, reason);
  }

  #resetCrashes(): void {
    if (this.#status.crashes.length === 0) return;
    this.#status.crashes = [];
    this.#emitCrashes();
  }

  #emitCrashes(): void {
    const list = [...this.#status.crashes];
    this.#callback("onCrash", () => this.#o.onCrash?.(list));
  }

  // ---- state and waiting ----

  #setState(state: PluginState, reason: string | null): void {
    const changed = this.#status.state !== state ||
      this.#status.reason !== reason;
    this.#status.state = state;
    this.#status.reason = reason;
    if (!changed) return;
    this.#status.since = Date.now();
    if (SETTLED.has(state)) this.#settled++;
    this.#log.log(
      state === "ready" || state === "starting" || state === "stopping" ||
        state === "stopped"
        ? "info"
        : "warn",
      `plugin ${state}`,
      {
        plugin: this.name,
        kind: this.kind,
        incarnation: this.#status.incarnation,
        reason,
        crashes: this.#status.crashes.length,
      },
    );
    const snapshot = this.status;
    this.#callback("onState", () => this.#o.onState?.(snapshot));
    for (const w of this.#waiters) w();
  }

  /** Runs a user callback; its failure is logged, never thrown into the loop. */
  #callback(what: string, fn: () => void | Promise<void>): void {
    try {
      Promise.resolve(fn()).catch((e) =>
        this.#log.log("error", `${what} callback failed`, {
          plugin: this.name,
          error: (e as Error).message,
        })
      );
    } catch (e) {
      this.#log.log("error", `${what} callback failed`, {
        plugin: this.name,
        error: (e as Error).message,
      });
    }
  }

  /** Resolves once `pred` holds, checked now and after every state change. */
  #until(pred: () => boolean): Promise<void> {
    const check = pred;
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const w = () => {
        if (check()) {
          this.#waiters.delete(w);
          resolve();
        }
      };
      this.#waiters.add(w);
    });
  }

  /** A fresh wake-up; pending requests are flags the loop reads at its top. */
  #renewWake(): void {
    this.#wake = Promise.withResolvers<"wake">();
    if (this.#stopRequested) this.#wake.resolve("wake");
  }

  #pluginId(n: number): string {
    return `${this.name}-${this.#o.node_id}-${n}`;
  }
}

function killGroup(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(-pid, sig);
  } catch {
    // ESRCH: the group is gone
  }
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}

/** Removes a socket file left behind; anything else at that path is left alone. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const info = await Deno.lstat(path);
    if (info.isSocket) await Deno.remove(path);
  } catch {
    // absent
  }
}

/** Calls `fn` per line of `stream` (trailing CR dropped) until it ends. */
async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  fn: (line: string) => void,
): Promise<void> {
  let buf = "";
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        fn(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
    }
  } catch {
    // the pipe broke: the process is gone
  }
  if (buf !== "") fn(buf.replace(/\r$/, ""));
}
