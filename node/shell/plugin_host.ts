/**
 * The node's plugins (SPEC §7): one supervisor per configured plugin, the
 * gRPC clients core uses for its workspace and pool, and the plugin records
 * published under `/boi/plugins/{node_id}/{name}`.
 */
import type { Pool, Workspace } from "../exec/contracts.ts";
import { GrpcHooks } from "../exec/grpc_hooks.ts";
import type { HooksSettings } from "../hooks/mod.ts";
import type { Hooks, Provisioner, Router } from "../plugins/contracts.ts";
import { GrpcRouter } from "../exec/grpc_router.ts";
import { GrpcWorkspace } from "../exec/grpc_workspace.ts";
import { GrpcProvisioner } from "../exec/grpc_provisioner.ts";
import type { PluginConfig } from "../plugins/config.ts";
import {
  type PluginRecord,
  recordState,
  storedCrashes,
  toRecord,
} from "../plugins/plugin_record.ts";
import { RestartAwarePool } from "../plugins/restart_pool.ts";
import { type PluginStatus, PluginSupervisor } from "../plugins/supervisor.ts";
import type { Keys } from "../keys.ts";
import type { Logger } from "./log.ts";

export { type PluginRecord, recordState };

/** What the host reads from etcd: `get(key)` as text, null when absent. */
export interface RecordReader {
  get(key: string): Promise<string | null>;
}

/** A restart's outcome: the new status, and the tasks whose running attempt it cut. */
export type RestartResult = PluginStatus & {
  /** Attach mode: the sidecar was reconnected to, not restarted. */
  attached: boolean;
  lost_tasks: string[];
};

/** How long a call waits for a restarting plugin before it fails. */
const CALL_WAIT_MS = 15_000;

/** How long the node's start waits for etcd to hand back the crash lists. */
const RESTORE_TIMEOUT_MS = 3000;

export class PluginHost {
  readonly supervisors = new Map<string, PluginSupervisor>();
  readonly #nodeId: string;
  readonly #log: Logger;
  #pool: RestartAwarePool | null = null;
  readonly #configs: PluginConfig[];

  constructor(
    configs: PluginConfig[],
    opts: {
      node_id: string;
      data_dir: string;
      core_version: string;
      log: Logger;
      /** Every state change and crash, for the node to publish. */
      onChange: (name: string, record: PluginRecord) => void;
    },
  ) {
    this.#nodeId = opts.node_id;
    this.#log = opts.log;
    this.#configs = configs;
    for (const c of configs) {
      const sup: PluginSupervisor = new PluginSupervisor({
        plugin: c.spec,
        node_id: opts.node_id,
        data_dir: opts.data_dir,
        core_version: opts.core_version,
        ready_timeout_ms: c.ready_timeout_ms,
        health_interval_ms: c.health_interval_ms,
        log: {
          log: (level, msg, fields) =>
            opts.log.log(level, msg, { plugin: c.spec.name, ...fields }),
        },
        onState: (st) => opts.onChange(c.spec.name, toRecord(st)),
        onCrash: () => opts.onChange(c.spec.name, toRecord(sup.status)),
      });
      this.supervisors.set(c.spec.name, sup);
    }
  }

  /**
   * Reads each plugin's record left by this node's previous process (its
   * lease lives until it expires) and adopts its crash list, so a node that
   * crashes and comes back does not get a fresh budget. etcd unreachable or
   * slow: logged, and the plugins start with what they have.
   */
  async restoreCrashes(
    etcd: RecordReader,
    keys: Keys,
    timeoutMs = RESTORE_TIMEOUT_MS,
  ): Promise<void> {
    const read = Promise.all(
      [...this.supervisors].map(async ([name, sup]) => {
        const text = await etcd.get(keys.plugin(this.#nodeId, name));
        const crashes = text === null ? null : storedCrashes(text);
        if (text !== null && crashes === null) {
          this.#log.warn("plugin record unreadable: crash list not restored", {
            plugin: name,
          });
        }
        return { name, sup, crashes: crashes ?? [] };
      }),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => {
      timer = setTimeout(() => r("late"), timeoutMs);
    });
    try {
      const got = await Promise.race([read, late]);
      if (got === "late") {
        this.#log.warn("etcd did not answer: plugin crash lists not restored", {
          timeout_ms: timeoutMs,
        });
        return;
      }
      for (const { name, sup, crashes } of got) {
        if (crashes.length === 0) continue;
        sup.adoptCrashes(crashes);
        this.#log.info("plugin crash list restored", {
          plugin: name,
          crashes: sup.status.crashes.length,
        });
      }
    } catch (e) {
      this.#log.warn("plugin crash lists not restored", {
        error: (e as Error).message,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts every plugin; a plugin that fails to start leaves the node degraded, not dead. */
  async startAll(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.start()));
  }

  /** The supervisor of the plugin of `kind` (at most one per node, SPEC §7). */
  #find(kind: string): PluginSupervisor | undefined {
    for (const s of this.supervisors.values()) if (s.kind === kind) return s;
    return undefined;
  }

  #byKind(kind: string): PluginSupervisor {
    const s = this.#find(kind);
    if (s === undefined) throw new Error(`no ${kind} plugin configured`);
    return s;
  }

  /** The pool client core uses (one per host: a restart must see its streams). */
  pool(): Pool {
    this.#pool ??= new RestartAwarePool(this.#byKind("pool"), CALL_WAIT_MS);
    return this.#pool;
  }

  workspace(): Workspace {
    const s = this.#byKind("workspace");
    return new GrpcWorkspace({
      connection: () => s.connection({ wait_ms: CALL_WAIT_MS }),
    });
  }

  /**
   * The router client (SPEC §5.2), or null when no router plugin is
   * configured. A short wait for a restarting router: its advice is
   * optional, and a failed call leaves HRW's choice (core/routing.ts).
   */
  router(): Router | null {
    const s = this.#find("router");
    return s === undefined ? null : new GrpcRouter({
      connection: () => s.connection({ wait_ms: 1000 }),
    });
  }

  /** The provisioner client, or null when no provisioner plugin is configured. */
  provisioner(): Provisioner | null {
    const s = this.#find("provisioner");
    // A short wait: a crashed provisioner fails the Allocate (a counted
    // failure), it does not hold the request open.
    return s === undefined ? null : new GrpcProvisioner({
      connection: () => s.connection({ wait_ms: 2000 }),
    });
  }

  /**
   * The hooks plugin's settings and the client that calls it, or null if none
   * is configured. Calls do not wait for a restarting plugin: delivery retries.
   */
  hooks(): { settings: HooksSettings; sink: Hooks } | null {
    const c = this.#configs.find((c) => c.spec.kind === "hooks");
    const s = c && this.supervisors.get(c.spec.name);
    if (!c || !s) return null;
    return {
      settings: {
        name: c.spec.name,
        tier: c.tier,
        subscribe: c.subscribe ?? null,
        wal_segment_events: c.wal_segment_events,
        backpressure_window: c.backpressure_window,
      },
      sink: new GrpcHooks({ connection: () => s.connection() }),
    };
  }

  /**
   * False while any plugin is not ready: the node then reports `health:
   * degraded`. A best_effort hooks plugin does not count: its tier promises
   * never to hold up work. Nor does a provisioner: it runs no task, and its
   * failures are counted and cooled down per requires (core/provision.ts); a
   * degraded admin would make its own work look unschedulable.
   */
  healthy(): boolean {
    for (const c of this.#configs) {
      if (c.spec.kind === "hooks" && c.tier === "best_effort") continue;
      if (c.spec.kind === "provisioner") continue;
      const s = this.supervisors.get(c.spec.name);
      if (s && s.state !== "ready") return false;
    }
    return true;
  }

  records(): Map<string, PluginRecord> {
    return new Map(
      [...this.supervisors].map(([n, s]) => [n, toRecord(s.status)]),
    );
  }

  /**
   * `boi plugin restart`: forgets the crash list and starts a fresh
   * incarnation. A pool's running work is not drained: each running attempt
   * ends as "attempt lost" (re-queued, no retry spent; restart_pool.ts), and
   * the answer names those tasks. An attached pool is only reconnected to:
   * its work goes on.
   */
  async restart(name: string): Promise<RestartResult> {
    const s = this.supervisors.get(name);
    if (!s) {
      throw new Error(`no plugin named ${JSON.stringify(name)} on this node`);
    }
    // An attached pool is a sidecar core does not stop: its workers and
    // their streams outlive the reconnect, so their real exits still count.
    const lost = s.kind === "pool" && !s.attached && this.#pool !== null
      ? this.#pool.cutForRestart(
        `pool plugin ${name} restarted (boi plugin restart); no retry spent`,
      )
      : [];
    if (lost.length > 0) {
      this.#log.warn("plugin restart: running attempts end as attempt lost", {
        plugin: name,
        tasks: lost,
      });
    }
    return {
      ...(await s.restart()),
      attached: s.attached,
      lost_tasks: lost,
    };
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.supervisors.values()].map((s) => s.stop().catch(() => {})),
    );
  }
}
