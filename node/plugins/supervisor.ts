/**
 * The plugin supervisor (SPEC §7): one plugin's public face — start,
 * connection, restart, stop. Its parts: the process (plugin_process.ts),
 * ready and handshake (ready.ts), the health probe (health_probe.ts), the
 * crash budget (crash_budget.ts) and the loop (supervision_loop.ts). It knows
 * nothing of etcd: the node stores what `onCrash`/`onState` report.
 * @module
 */
import type { PluginKind } from "../../proto/mod.ts";
import type { PluginConnection } from "../exec/grpc_client.ts";
import {
  type CrashBudget,
  crashesInWindow,
  DEFAULT_CRASH_BUDGET,
} from "./crash_budget.ts";
import { timer } from "./plugin_process.ts";
import { StatusKeeper } from "./status_keeper.ts";
import { SupervisionLoop } from "./supervision_loop.ts";
import {
  MAX_SOCKET_PATH,
  type PluginStatus,
  type PluginSupervisorOptions,
  PluginUnavailableError,
  type StopResult,
  type SupervisorLog,
} from "./supervisor_types.ts";

export {
  DEFAULT_INHERIT_ENV,
  type PluginSpec,
  type PluginState,
  type PluginStatus,
  type PluginSupervisorOptions,
  PluginUnavailableError,
  type StopResult,
  type SupervisorLog,
} from "./supervisor_types.ts";

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
  readonly #budget: CrashBudget;
  readonly #k: StatusKeeper;
  readonly #l: SupervisionLoop;
  #loop: Promise<void> | null = null;

  constructor(options: PluginSupervisorOptions) {
    this.#o = options;
    this.#log = options.log ?? stderrLog;
    this.name = options.plugin.name;
    this.kind = options.plugin.kind;
    this.#budget = {
      budget: options.crash_budget ?? DEFAULT_CRASH_BUDGET.budget,
      window_ms: options.crash_window_ms ?? DEFAULT_CRASH_BUDGET.window_ms,
    };
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(this.name)) {
      throw new Error(
        `plugin name must match ^[a-z0-9][a-z0-9_-]{0,62}$: got ${
          JSON.stringify(this.name)
        }`,
      );
    }
    const attach = options.plugin.socket;
    if (attach === undefined && options.plugin.argv.length === 0) {
      throw new Error(`plugin ${this.name}: argv is empty`);
    }
    if (attach !== undefined && !attach.startsWith("/")) {
      throw new Error(
        `plugin ${this.name}: socket must be an absolute path: got ${
          JSON.stringify(attach)
        }`,
      );
    }
    const dataDir = absolute(options.data_dir);
    this.socket = attach ?? `${dataDir}/plugins/${this.name}.sock`;
    this.pluginDataDir = `${dataDir}/plugins/${this.name}`;
    if (encoder.encode(this.socket).length > MAX_SOCKET_PATH) {
      throw new Error(
        `plugin ${this.name}: socket path is longer than ${MAX_SOCKET_PATH} bytes (use a shorter data dir): ${this.socket}`,
      );
    }
    this.#k = new StatusKeeper(
      {
        name: this.name,
        kind: this.kind,
        state: "stopped",
        reason: null,
        incarnation: 0,
        pid: null,
        crashes: crashesInWindow(
          options.crashes ?? [],
          Date.now(),
          this.#budget,
        ),
        plugin_name: null,
        plugin_version: null,
        proto_major: null,
        proto_minor: null,
        capabilities: [],
        warnings: [],
        since: Date.now(),
      },
      this.#log,
      options.onState,
    );
    this.#l = new SupervisionLoop(
      options,
      this.#k,
      this.#budget,
      this.socket,
      this.pluginDataDir,
      this.#log,
    );
  }

  get #status(): PluginStatus {
    return this.#k.status;
  }

  /** Attach mode: a sidecar someone else runs serves the socket. */
  get attached(): boolean {
    return this.#o.plugin.socket !== undefined;
  }

  /** A copy of the current status. */
  get status(): PluginStatus {
    return this.#k.snapshot();
  }

  /**
   * The incarnation serving now, without copying the status: every Spawn asks
   * (restart_pool.ts), and the copy (`structuredClone`) was ~1% of a node's
   * CPU end to end.
   */
  get incarnation(): number {
    return this.#k.status.incarnation;
  }

  /** The current state, without copying the status (the node asks at every tick). */
  get state(): PluginStatus["state"] {
    return this.#k.status.state;
  }

  /** Pid of the running plugin process, if any. */
  get pid(): number | null {
    const ep = this.#l.inc?.ep;
    return ep && !ep.hasEnded ? ep.pid : null;
  }

  /**
   * Adds crash times recorded elsewhere (the node's record in etcd, written
   * before this process started) so the budget survives a node restart.
   * Only before `start()`; times outside the window are dropped.
   */
  adoptCrashes(crashes: readonly number[]): void {
    if (this.#loop) {
      throw new Error(`plugin ${this.name}: adoptCrashes after start`);
    }
    const merged = [...new Set([...this.#status.crashes, ...crashes])];
    this.#status.crashes = crashesInWindow(merged, Date.now(), this.#budget);
  }

  /**
   * Launches the plugin and resolves with the status once the first attempt
   * settles (ready, start_failed, refused or unstable).
   */
  async start(): Promise<PluginStatus> {
    if (this.#loop) throw new Error(`plugin ${this.name} already started`);
    this.#l.stopRequested = false;
    this.#l.wake = Promise.withResolvers<"wake">();
    if (this.#o.plugin.socket === undefined) {
      await Deno.mkdir(this.pluginDataDir, { recursive: true });
    }
    // Counted before the loop starts: it may settle (unstable) synchronously.
    const target = this.#k.settled + 1;
    this.#loop = this.#l.run().catch(async (e) => {
      // A bug here must not leave the plugin running unsupervised.
      this.#log.log("error", "plugin supervisor failed", {
        plugin: this.name,
        error: (e as Error).stack ?? String(e),
      });
      await this.#l.terminate({ kill: true }).catch(() => {});
      this.#k.set("stopped", `supervisor failed: ${(e as Error).message}`);
    });
    await this.#k.until(() => this.#k.settled >= target);
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
        this.#k.until(() => {
          const s = this.#status.state;
          return s === "ready" || s === "refused" || s === "unstable" ||
            s === "stopped";
        }),
        t.promise,
      ]);
      t.clear();
    }
    const conn = this.#l.inc?.conn;
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
    const target = this.#k.settled + 1;
    this.#l.restartRequested = true;
    this.#l.wake.resolve("wake");
    await this.#k.until(() =>
      !this.#l.restartRequested && this.#k.settled >= target
    );
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
    this.#l.stopRequested = true;
    this.#l.stopVia = options.via ?? "sigterm";
    this.#l.wake.resolve("wake");
    await this.#loop;
    this.#loop = null;
    const r = this.#l.lastStop;
    this.#l.lastStop = null;
    return r;
  }

  async #resetAndStart(): Promise<PluginStatus> {
    this.#l.resetCrashes();
    return await this.start();
  }
}

function absolute(p: string): string {
  return p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
}
