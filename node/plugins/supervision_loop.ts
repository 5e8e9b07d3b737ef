/**
 * The supervision loop (SPEC §7): launch, serve while healthy, count crashes,
 * pause, relaunch — until a stop. PluginSupervisor is its public face; the
 * flags below are how that face asks for a restart or stop.
 * @module
 */
import { PluginConnection } from "../exec/grpc_client.ts";
import {
  addCrash,
  type CrashBudget,
  crashesInWindow,
  unstableUntil,
} from "./crash_budget.ts";
import { AttachedPlugin } from "./attach.ts";
import { bringUp, judgeHandshake } from "./ready.ts";
import { probeHealth } from "./health_probe.ts";
import {
  type PluginEndpoint,
  removeStaleSocket,
  spawnPlugin,
  timer,
} from "./plugin_process.ts";
import type { StatusKeeper } from "./status_keeper.ts";
import type {
  PluginStatus,
  PluginSupervisorOptions,
  StopResult,
  SupervisorLog,
} from "./supervisor_types.ts";

/** The current incarnation: its endpoint and, once ready, its channel. */
export interface Incarnation {
  ep: PluginEndpoint;
  conn: PluginConnection | null;
}

type Outcome =
  | { kind: "ready" }
  | { kind: "failed"; reason: string }
  | { kind: "refused"; reason: string }
  | { kind: "wake" };

/** One plugin's life loop and the requests it reads at its top. */
export class SupervisionLoop {
  inc: Incarnation | null = null;
  nextIncarnation: number;
  /** Resolved to cut any wait short; renewed after each wake-up. */
  wake = Promise.withResolvers<"wake">();
  stopRequested = false;
  restartRequested = false;
  stopVia: "sigterm" | "stdin" = "sigterm";
  lastStop: StopResult | null = null;

  constructor(
    readonly o: PluginSupervisorOptions,
    readonly k: StatusKeeper,
    readonly budget: CrashBudget,
    readonly socket: string,
    readonly pluginDataDir: string,
    readonly log: SupervisorLog,
  ) {
    this.nextIncarnation = o.incarnation ?? 1;
  }

  get #status(): PluginStatus {
    return this.k.status;
  }

  async run(): Promise<void> {
    while (!this.stopRequested) {
      if (this.restartRequested) {
        this.restartRequested = false;
        this.resetCrashes();
      }
      // Budget spent (also from a crash list handed in at start).
      const until = this.#unstableUntil();
      if (until !== null) {
        this.k.set(
          "unstable",
          `${this.#status.crashes.length} crashes within ${this.budget.window_ms} ms`,
        );
        const t = timer(until - Date.now());
        const r = await Promise.race([t.promise, this.wake.promise]);
        t.clear();
        if (r === "wake") this.renewWake();
        continue;
      }
      const outcome = await this.#launch();
      if (outcome.kind === "wake") {
        await this.terminate();
        this.renewWake();
        continue;
      }
      if (outcome.kind === "refused") {
        await this.terminate();
        this.k.set("refused", outcome.reason);
        await this.wake.promise;
        this.renewWake();
        continue;
      }
      if (outcome.kind === "failed") {
        await this.terminate({ kill: true });
        this.#crash("start_failed", outcome.reason);
        await this.#pause();
        continue;
      }
      const inc = this.inc!;
      const intervalMs = this.o.health_interval_ms ?? 10_000;
      const end = await probeHealth(inc.conn!, {
        interval_ms: intervalMs,
        timeout_ms: this.o.health_timeout_ms ?? 5000,
        failures: this.o.health_failures ?? 3,
        corr_id: `${this.#pluginId(inc.ep.n)}.health`,
        ended: inc.ep.ended,
        wake: this.wake.promise,
        gone: inc.ep.gone?.bind(inc.ep),
        lost: inc.ep.lost?.bind(inc.ep),
        log: this.#pluginLog,
      });
      if (end.kind === "wake") {
        await this.terminate();
        this.renewWake();
        continue;
      }
      if (end.kind === "unhealthy") {
        this.k.set("unhealthy", end.reason);
        await this.terminate();
        this.#crash("unhealthy", end.reason);
      } else {
        await this.terminate(); // already exited: close pipes, socket, channel
        this.#crash("crashed", end.reason);
      }
      await this.#pause();
    }
    await this.terminate();
    this.k.set("stopped", "stopped");
  }

  /** Waits `restart_delay_ms` (cut short by stop/restart) unless the budget is spent. */
  async #pause(): Promise<void> {
    if (this.#unstableUntil() !== null) return;
    const t = timer(this.o.restart_delay_ms ?? 1000);
    const r = await Promise.race([t.promise, this.wake.promise]);
    t.clear();
    if (r === "wake") this.renewWake();
  }

  /**
   * Starts an incarnation (spawns it, or attaches to the sidecar's socket)
   * and takes it to ready: BOI_READY or an accepting socket, then Handshake.
   */
  async #launch(): Promise<Outcome> {
    const n = this.nextIncarnation++;
    let ep: PluginEndpoint;
    if (this.o.plugin.socket !== undefined) {
      ep = new AttachedPlugin(
        n,
        this.o.plugin.kind,
        this.socket,
        this.o.ready_timeout_ms ?? 10_000,
      );
    } else {
      await removeStaleSocket(this.socket);
      try {
        ep = spawnPlugin({
          spec: this.o.plugin,
          kind: this.o.plugin.kind,
          n,
          node_id: this.o.node_id,
          socket: this.socket,
          plugin_data_dir: this.pluginDataDir,
          plugin_id: this.#pluginId(n),
          inherit_env: this.o.inherit_env,
          log: this.log,
        });
      } catch (e) {
        return { kind: "failed", reason: `spawn: ${(e as Error).message}` };
      }
    }
    const inc: Incarnation = { ep, conn: null };
    this.inc = inc;
    this.#status.incarnation = n;
    this.#status.pid = ep.pid;
    this.k.set("starting", null);

    const up = await bringUp(ep, {
      kind: this.o.plugin.kind,
      socket: this.socket,
      ready_timeout_ms: this.o.ready_timeout_ms ?? 10_000,
      handshake_timeout_ms: this.o.handshake_timeout_ms ?? 5000,
      core_version: this.o.core_version ?? "dev",
      corr_id: `${this.#pluginId(n)}.handshake`,
      wake: this.wake.promise,
    });
    inc.conn = up.conn;
    if (up.kind !== "answer") return up;
    const a = up.hs;
    Object.assign(this.#status, {
      plugin_name: a.plugin_name,
      plugin_version: a.plugin_version,
      proto_major: a.proto_major,
      proto_minor: a.proto_minor,
      capabilities: a.capabilities,
      warnings: [],
    });
    const verdict = judgeHandshake(a);
    if (verdict.kind === "refused") return verdict;
    for (const w of verdict.warnings) {
      this.#status.warnings.push(w);
      this.log.log("warn", w, { plugin: this.o.plugin.name });
    }
    this.k.set("ready", null);
    return { kind: "ready" };
  }

  /**
   * Ends the current incarnation: stdin closed and SIGTERM, SIGKILL to the
   * group after the grace (at once with `kill`); waits for exit and drain.
   */
  async terminate(options: { kill?: boolean } = {}): Promise<void> {
    const inc = this.inc;
    if (!inc) return;
    this.inc = null;
    // Closed first: calls in flight still get their answers (a pool's streams
    // their exits), and no new call reaches a plugin on its way out.
    inc.conn?.close();
    if (!inc.ep.hasEnded && (this.stopRequested || this.restartRequested)) {
      this.k.set("stopping", this.stopRequested ? "stop" : "restart");
    }
    const r = await inc.ep.terminate({
      kill: options.kill,
      via: this.stopRequested ? this.stopVia : "sigterm",
      grace_ms: this.o.shutdown_grace_ms ?? 5000,
    });
    this.#status.pid = null;
    if (this.stopRequested) this.lastStop = r;
  }

  // ---- crash bookkeeping (the rule is crash_budget.ts) ----

  /** When the budget is spent: the time it frees up again; else null. */
  #unstableUntil(): number | null {
    const now = Date.now();
    this.#status.crashes = crashesInWindow(
      this.#status.crashes,
      now,
      this.budget,
    );
    return unstableUntil(this.#status.crashes, now, this.budget);
  }

  #crash(state: "start_failed" | "crashed" | "unhealthy", reason: string) {
    this.#status.crashes = addCrash(
      this.#status.crashes,
      Date.now(),
      this.budget,
    );
    this.#emitCrashes();
    this.k.set(state, reason);
  }

  resetCrashes(): void {
    if (this.#status.crashes.length === 0) return;
    this.#status.crashes = [];
    this.#emitCrashes();
  }

  #emitCrashes(): void {
    const list = [...this.#status.crashes];
    this.k.callback("onCrash", () => this.o.onCrash?.(list));
  }

  // ---- waking ----

  /** The log with this plugin's name on every line. */
  readonly #pluginLog: SupervisorLog = {
    log: (level, msg, fields) =>
      this.log.log(level, msg, { plugin: this.o.plugin.name, ...fields }),
  };

  /** A fresh wake-up; pending requests are flags the loop reads at its top. */
  renewWake(): void {
    this.wake = Promise.withResolvers<"wake">();
    if (this.stopRequested) this.wake.resolve("wake");
  }

  #pluginId(n: number): string {
    return `${this.o.plugin.name}-${this.o.node_id}-${n}`;
  }
}
