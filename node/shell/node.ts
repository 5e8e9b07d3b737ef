/**
 * The node's shell: the event loop that feeds the pure core and executes
 * its effects, wired to named parts that each do one kind of I/O —
 * registration (lease, node and caps records), the watch loop, the txn
 * runner (group commit), the worker runner, the flush replayer, the record
 * publishers, etcd health and the metrics. Only the shell touches the outside
 * world; every decision is the core's (node/core).
 */
import type { Etcd3 } from "etcd3";
import { Keys } from "../keys.ts";
import type { CapsRecord } from "../schema.ts";
import { isUnreachable } from "../etcd_errors.ts";
import {
  applyEffects,
  applyEvent,
  type Effect,
  emptyView,
  handle,
  type MutableView,
  type NodeEvent,
} from "../core/mod.ts";
import { capsRecord } from "../core/caps_record.ts";
import { PendingFlush } from "./pending_flush.ts";
import type { PluginHost, PluginRecord } from "./plugin_host.ts";
import type { Pool, Workspace } from "../exec/contracts.ts";
import { TxnBatcher } from "./txn_batch.ts";
import { WorkerRunner } from "./worker_runner.ts";
import { unpreparedClaim } from "./prepare_ahead.ts";
import { type EffectTargets, executeEffect } from "./effect_executor.ts";
import { etcdCasPort } from "./cas_port.ts";
import { EtcdHealth, outageGraceMs, partitionEvent } from "./etcd_health.ts";
import { FlushReplayer } from "./flush_replayer.ts";
import { NodeRecords } from "./records.ts";
import { AdminCapsPort } from "../identity/admin_caps_port.ts";
import { Registration } from "./registration.ts";
import { WatchLoop } from "./watch_loop.ts";
import {
  countPluginChange,
  countWatchEvents,
  declareNodeMetrics,
} from "./node_metrics.ts";
import { declareMemoryMetrics } from "./memory_metrics.ts";
import type { Logger } from "./log.ts";
import { type ProvisionDeps, ProvisionRunner } from "./provisioning.ts";
import { declareProvisionMetrics } from "./provision_metrics.ts";
import { Metrics } from "./metrics.ts";
import { coreConfig, type NodeConfig } from "./config.ts";
import { emit } from "../core/hook_events.ts";
import { type HooksSettings, NodeHooks } from "../hooks/mod.ts";
import type { Hooks, Router } from "../plugins/contracts.ts";
import { now } from "./clock.ts";

export { VERSION } from "../version.ts";

export interface NodeDeps {
  config: NodeConfig;
  client: Etcd3;
  log: Logger;
  pool: Pool;
  workspace: Workspace;
  /** Address other nodes reach this one at (host:port); known once HTTP listens. */
  addr: string;
  /** The node's plugins, whose records and health the node publishes. */
  plugins: PluginHost | null;
  /** The hooks plugin (SPEC §8), if one is configured. */
  hooks?: { settings: HooksSettings; sink: Hooks } | null;
  /** The router plugin (SPEC §5.2), if one is configured. */
  router?: Router | null;
  /** Set when the node runs a provisioner plugin (provisioning.ts). */
  provisioning?: ProvisionDeps | null;
  /** The node must stop after it started (it may not register again here); main exits 1. */
  onFatal?: (err: Error) => void;
}

export class BoiNode {
  readonly view: MutableView;
  readonly keys: Keys;
  readonly metrics = new Metrics();
  readonly startedAt = now();
  #queue: NodeEvent[] = [];
  #draining = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  #stopping = false;
  readonly #flush: PendingFlush;
  readonly #targets: EffectTargets;
  readonly #workers: WorkerRunner;
  readonly #etcd: EtcdHealth;
  readonly #replayer: FlushReplayer;
  readonly #records: NodeRecords;
  readonly #adminCaps: AdminCapsPort;
  readonly #registration: Registration;
  readonly #watch: WatchLoop;
  /** Event delivery to the hooks plugin (SPEC §8); null without one. */
  readonly hooks: NodeHooks | null;
  readonly #provision: ProvisionRunner | null;

  constructor(readonly deps: NodeDeps) {
    const c = deps.config;
    const stopping = () => this.#stopping;
    const push = (ev: NodeEvent) => this.push(ev);
    this.keys = new Keys(c.key_prefix);
    this.view = emptyView({
      ...coreConfig(c, deps.provisioning != null),
      // Watched task events reach only the hooks plugin and the debug log.
      watched_task_events: deps.hooks != null || c.log_level === "debug",
      router: deps.router != null,
    });
    this.#provision = deps.provisioning
      ? new ProvisionRunner({
        client: deps.client,
        keys: this.keys,
        log: deps.log,
        deps: deps.provisioning,
        push,
      })
      : null;
    this.#etcd = new EtcdHealth(
      deps.log,
      this.metrics,
      // One failed call or keepalive round (a dead member of three, one slow
      // answer under load) is not an outage.
      outageGraceMs(c.lease_ttl_s),
      () => this.#replayer.replay(),
      (ch) => this.#execute(partitionEvent(c.node_id, ch)),
    );
    this.#flush = new PendingFlush(
      `${c.data_dir}/pending-flush/${c.node_id}.jsonl`,
      deps.log,
      undefined,
      // The view must forget it too, or the task is never decided here again.
      (e) =>
        this.push({
          type: "flush_resolved",
          at: now(),
          task_id: e.task_id,
        }),
    );
    this.#replayer = new FlushReplayer({
      flush: this.#flush,
      client: deps.client,
      keys: this.keys,
      config: this.view.config,
      log: deps.log,
      health: this.#etcd,
      push,
      execute: (e) => this.#execute(e),
      stopping,
      hooks: () => this.hooks,
    });
    // The caps key carries cluster_admin only as the admin path granted it.
    this.#adminCaps = new AdminCapsPort(
      etcdCasPort(deps.client, (err) => {
        if (isUnreachable(err)) this.#etcd.mark(false, err);
      }),
      deps.client,
      this.keys,
      c.node_id,
    );
    this.#records = new NodeRecords(this.#adminCaps, this.keys, c.node_id);
    this.#registration = new Registration({
      client: deps.client,
      keys: this.keys,
      node_id: c.node_id,
      lease_ttl_s: c.lease_ttl_s,
      addr: deps.addr,
      startedAt: this.startedAt,
      log: deps.log,
      health: this.#etcd,
      push,
      caps: async () => {
        await this.#adminCaps.refresh(); // a grant or revoke made while away
        return this.#caps();
      },
      capsGuard: () => this.#adminCaps.guard(),
      onRegistered: (revision, caps) => {
        this.#records.registered(revision, caps);
        queueMicrotask(() => this.#publishPlugins());
      },
      stopping,
      fatal: (e) => deps.onFatal?.(e),
    });
    this.#watch = new WatchLoop({
      client: deps.client,
      prefix: this.keys.prefix,
      log: deps.log,
      health: this.#etcd,
      push: countWatchEvents(this.metrics, push),
      stopping,
    });
    this.#workers = new WorkerRunner({
      data_dir: c.data_dir,
      node_id: c.node_id,
      pool: deps.pool,
      workspace: deps.workspace,
      log: deps.log,
      metrics: this.metrics,
      push,
      specYaml: (id) => this.view.specs.get(id)?.value.yaml ?? "",
      spec: (id) => this.view.specs.get(id)?.value,
    });
    declareNodeMetrics(
      this.metrics,
      this.view,
      () => this.#flush.bytes,
      this.#etcd,
    );
    declareProvisionMetrics(this.metrics, this.view);
    declareMemoryMetrics(this.metrics);
    this.hooks = deps.hooks
      ? new NodeHooks({
        ...deps.hooks,
        node_id: c.node_id,
        data_dir: c.data_dir,
        client: deps.client,
        keys: this.keys,
        log: deps.log,
        metrics: this.metrics,
        push,
      })
      : null;
    this.#targets = {
      view: this.view,
      log: deps.log,
      etcd: this.#etcd,
      txns: {
        txns: new TxnBatcher(deps.client),
        hooks: this.hooks,
        health: this.#etcd,
        replayer: this.#replayer,
        log: deps.log,
        metrics: this.metrics,
        push,
        worker: (id) => this.view.workers.get(id),
      },
      workers: this.#workers,
      hooks: this.hooks,
      provision: this.#provision,
      router: deps.router ?? null,
      push,
    };
  }

  get log(): Logger {
    return this.deps.log;
  }

  /** Registers, lists, watches, and starts the timers. Resolves once the node is live. */
  async start(): Promise<void> {
    const c = this.deps.config;
    await Deno.mkdir(`${c.data_dir}/pending-flush`, { recursive: true });
    for (const e of await this.#flush.load()) {
      this.push({
        type: "result_flushed",
        at: now(),
        task_id: e.task_id,
        fence: e.fence,
      });
    }
    if (this.#flush.entries.length > 0) {
      this.log.info("pending flush has results from before", {
        entries: this.#flush.entries.length,
      });
    }
    await this.#registration.register();
    await this.hooks?.start();
    await this.#watch.start();
    this.#timers.push(
      setInterval(() => this.push({ type: "tick", at: now() }), c.tick_ms),
      setInterval(() => this.#publishCaps(), 1000),
      setInterval(() => this.#etcd.report(), 5000),
      setInterval(() => this.#replayer.replay(), 2000),
    );
    this.#replayer.replay();
    this.log.info("node ready", {
      addr: this.deps.addr,
      lease_ttl_s: c.lease_ttl_s,
      workers_max: c.workers_max,
      caps: c.static_caps,
    });
  }

  /** Health for /healthz: registered and etcd reachable. */
  health(): { ok: boolean; reason: string } {
    if (!this.#etcd.up) {
      return {
        ok: false,
        reason: `etcd_unreachable since=${this.#etcd.downSince}`,
      };
    }
    if (this.view.lease_id === null) {
      return { ok: false, reason: "not registered" };
    }
    return { ok: true, reason: "ok" };
  }

  /** etcd reachability as this node last saw it; `down_since` is null while up. */
  etcdStatus(): { up: boolean; down_since: number | null } {
    return { up: this.#etcd.up, down_since: this.#etcd.downSince };
  }

  /** When the view last heard from etcd (a watch event, keepalive or write); its cache age. */
  get lastEtcdContact(): number {
    return this.#etcd.lastContact;
  }

  /** Pending-flush entries not yet committed or superseded. */
  pendingFlushEntries(): number {
    return this.#flush.entries.length;
  }

  /** Called by the plugin host on every plugin state change or crash. */
  onPluginChange(name: string, record: PluginRecord): void {
    const prev = this.#records.setPlugin(name, record);
    if (record.state === "unstable" && prev?.state !== "unstable") {
      this.#execute(
        emit("plugin.unstable", {
          plugin: name,
          crashes: record.crashes,
          reason: record.reason,
        }),
      );
    }
    countPluginChange(this.metrics, name, prev, record);
    const healthy = this.deps.plugins?.healthy() ?? true;
    if (healthy !== this.view.plugins_healthy) {
      this.push({ type: "plugins_health", at: now(), healthy });
      // Publish the health change now rather than at the next 1 s tick.
      queueMicrotask(() => this.#publishCaps());
    }
    queueMicrotask(() => this.#publishPlugins());
  }

  #publishPlugins(): void {
    const lease = this.view.lease_id;
    if (lease !== null && !this.#stopping) this.#records.publishPlugins(lease);
  }

  /** workers_busy/health/drain state at most once a second, only when they changed. */
  #publishCaps(): void {
    const lease = this.view.lease_id;
    if (lease === null || this.#stopping) return;
    this.#publishPlugins();
    this.#records.publishCaps(this.#caps(), lease);
  }

  #caps(): CapsRecord {
    const caps = capsRecord(this.view, now(), this.#flush.entries.length);
    return { ...caps, static: { ...caps.static, ...this.#adminCaps.caps() } };
  }

  push(ev: NodeEvent): void {
    this.#queue.push(ev);
    if (!this.#draining) queueMicrotask(() => this.#drain());
  }

  /** The event loop: apply, decide, record the local half of the effects, execute them. */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        const ev = this.#queue.shift()!;
        for (const w of applyEvent(this.view, this.keys, ev)) this.log.warn(w);
        if (this.#stopping) continue;
        const effects = handle(this.view, this.keys, ev);
        applyEffects(this.view, effects, ev.at);
        const unprepared = unpreparedClaim(ev, effects);
        if (unprepared !== null) this.#workers.ahead.drop(unprepared);
        for (const e of effects) this.#execute(e);
      }
    } finally {
      this.#draining = false;
    }
  }

  #execute(e: Effect): void {
    executeEffect(this.#targets, e);
  }

  /** Graceful stop: no new claims, kill workers, release the lease so others take over now. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    this.#workers.ahead.dropAll();
    const workers = [...this.view.workers.values()];
    await this.#workers.stopAll(workers); // before the lease goes
    await this.#watch.stop();
    await this.hooks?.stop().catch(() => {}); // the final HWM, while the lease still holds
    await this.#registration.revoke();
    this.log.info("node stopped", { killed_workers: workers.length });
  }
}
