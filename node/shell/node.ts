/**
 * The imperative shell: owns the etcd client, the lease, the watch, timers,
 * workers and HTTP, and turns everything into events for the pure core.
 * Only this file (and the I/O modules it uses) touches the outside world.
 */
import type { Etcd3, Watcher } from "etcd3";
import { Keys } from "../keys.ts";
import type { CapsRecord, NodeRecord } from "../schema.ts";
import { isUnreachable, unreachableReason } from "../etcd_errors.ts";
import {
  applyEffects,
  applyEvent,
  type Effect,
  emptyView,
  handle,
  type MutableView,
  type NodeEvent,
  type TxnEffect,
} from "../core/mod.ts";
import { capsRecord } from "../core/caps_record.ts";
import { decideReplay } from "../core/flush_replay.ts";
import { Buffer } from "node:buffer";
import { deadline } from "../etcd_errors.ts";
import { type FlushEntry, PendingFlush } from "./pending_flush.ts";
import type { PluginHost, PluginRecord } from "./plugin_host.ts";
import type { Pool, Workspace } from "../exec/contracts.ts";
import { listPrefix, runTxn, toChange, watchPrefix } from "./etcd_io.ts";
import { LeaseKeeper } from "./lease.ts";
import { TxnBatcher } from "./txn_batch.ts";
import { WorkerRunner } from "./worker_runner.ts";
import { type CasPort, CasPublisher } from "./cas_publisher.ts";
import { etcdCasPort } from "./cas_port.ts";
import { txnKeys } from "../core/txns.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import type { NodeConfig } from "./config.ts";

export { VERSION } from "../version.ts";
import { VERSION } from "../version.ts";

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
}

export class BoiNode {
  readonly view: MutableView;
  readonly keys: Keys;
  readonly metrics = new Metrics();
  #queue: NodeEvent[] = [];
  #draining = false;
  #lease: LeaseKeeper | null = null;
  #watcher: Watcher | null = null;
  #timers: ReturnType<typeof setInterval>[] = [];
  #casPort: CasPort;
  /** The caps record, by CAS on its last revision. */
  #capsPub: CasPublisher;
  #stopping = false;
  #etcdUp = true;
  #etcdDownSince: number | null = null;
  #registering = false;
  readonly startedAt = Date.now();
  #flush: PendingFlush;
  #replaying = false;
  #health: "ok" | "degraded" = "ok";
  #lastContact = Date.now();
  /** The latest record of each plugin, and the publisher that keeps it in etcd. */
  #pluginRecords = new Map<string, PluginRecord>();
  #pluginPublishers = new Map<string, CasPublisher>();
  #txns: TxnBatcher;
  #workers: WorkerRunner;

  constructor(readonly deps: NodeDeps) {
    const c = deps.config;
    this.keys = new Keys(c.key_prefix);
    this.view = emptyView({
      node_id: c.node_id,
      workers_max: c.workers_max,
      static_caps: c.static_caps,
      spill_after_ms: c.spill_after_ms,
      spill_step_ms: c.spill_step_ms,
      retry_backoff_ms: c.retry_backoff_ms,
      cancel_grace_ms: 1000,
      claim_failure_window_ms: c.claim_failure_window_ms,
      claim_failure_limit: c.claim_failure_limit,
      claim_failure_cooldown_ms: c.claim_failure_cooldown_ms,
    });
    this.#flush = new PendingFlush(
      `${c.data_dir}/pending-flush/${c.node_id}.jsonl`,
      deps.log,
      undefined,
      // The view must forget it too, or the task is never decided here again.
      (e) =>
        this.push({
          type: "flush_resolved",
          at: Date.now(),
          task_id: e.task_id,
        }),
    );
    this.#txns = new TxnBatcher(deps.client);
    this.#casPort = etcdCasPort(deps.client, (err) => {
      if (isUnreachable(err)) this.#markEtcd(false, err);
    });
    this.#capsPub = new CasPublisher(this.#casPort, this.keys.caps(c.node_id));
    this.#workers = new WorkerRunner({
      data_dir: c.data_dir,
      node_id: c.node_id,
      pool: deps.pool,
      workspace: deps.workspace,
      log: deps.log,
      metrics: this.metrics,
      push: (ev) => this.push(ev),
      specYaml: (id) => this.view.specs.get(id)?.value.yaml ?? "",
    });
    this.#declareMetrics();
  }

  get log(): Logger {
    return this.deps.log;
  }

  /** Registers, lists, watches, and starts the timers. Resolves once the node is live. */
  async start(): Promise<void> {
    await Deno.mkdir(`${this.deps.config.data_dir}/pending-flush`, {
      recursive: true,
    });
    for (const e of await this.#flush.load()) {
      this.push({
        type: "result_flushed",
        at: Date.now(),
        task_id: e.task_id,
        fence: e.fence,
      });
    }
    if (this.#flush.entries.length > 0) {
      this.log.info("pending flush has results from before", {
        entries: this.#flush.entries.length,
      });
    }
    await this.#register();
    await this.#relistAndWatch();
    const c = this.deps.config;
    this.#timers.push(
      setInterval(() => this.push({ type: "tick", at: Date.now() }), c.tick_ms),
    );
    this.#timers.push(setInterval(() => this.#publishCaps(), 1000));
    this.#timers.push(setInterval(() => this.#reportEtcd(), 5000));
    this.#timers.push(setInterval(() => this.#replayFlush(), 2000));
    this.#replayFlush();
    this.log.info("node ready", {
      addr: this.deps.addr,
      lease_ttl_s: c.lease_ttl_s,
      workers_max: c.workers_max,
      caps: c.static_caps,
    });
  }

  /** Health for /healthz: registered and etcd reachable. */
  health(): { ok: boolean; reason: string } {
    if (!this.#etcdUp) {
      return {
        ok: false,
        reason: `etcd_unreachable since=${this.#etcdDownSince}`,
      };
    }
    if (this.view.lease_id === null) {
      return { ok: false, reason: "not registered" };
    }
    return { ok: true, reason: "ok" };
  }

  /** etcd reachability as this node last saw it; `down_since` is null while up. */
  etcdStatus(): { up: boolean; down_since: number | null } {
    return { up: this.#etcdUp, down_since: this.#etcdDownSince };
  }

  /** When the view last heard from etcd (a watch event, keepalive or write); its cache age. */
  get lastEtcdContact(): number {
    return this.#lastContact;
  }

  /** Pending-flush entries not yet committed or superseded. */
  pendingFlushEntries(): number {
    return this.#flush.entries.length;
  }

  /** Called by the plugin host on every plugin state change or crash. */
  onPluginChange(name: string, record: PluginRecord): void {
    const prev = this.#pluginRecords.get(name);
    this.#pluginRecords.set(name, record);
    if (record.state === "unstable" && prev?.state !== "unstable") {
      this.#execute({
        kind: "emit",
        event: "plugin.unstable",
        payload: {
          plugin: name,
          crashes: record.crashes,
          reason: record.reason,
        },
      });
    }
    this.metrics.set(
      "boi_plugin_unstable",
      record.state === "unstable" ? 1 : 0,
      { plugin: name },
    );
    if (prev && record.crashes.length > prev.crashes.length) {
      this.metrics.inc("boi_plugin_restarts_total", { plugin: name });
    }
    const healthy = this.deps.plugins?.healthy() ?? true;
    if (healthy !== this.view.plugins_healthy) {
      this.push({ type: "plugins_health", at: Date.now(), healthy });
      // Publish the health change now rather than at the next 1 s tick.
      queueMicrotask(() => this.#publishCaps());
    }
    queueMicrotask(() => this.#publishPlugins());
  }

  /** Plugin records under the lease, each by CAS on its last revision (one publisher per record). */
  #publishPlugins(): void {
    const lease = this.view.lease_id;
    if (lease === null || this.#stopping) return;
    for (const [name, record] of this.#pluginRecords) {
      let pub = this.#pluginPublishers.get(name);
      if (!pub) {
        pub = new CasPublisher(
          this.#casPort,
          this.keys.plugin(this.deps.config.node_id, name),
        );
        this.#pluginPublishers.set(name, pub);
      }
      pub.publish(JSON.stringify(record), lease);
    }
  }

  push(ev: NodeEvent): void {
    this.#queue.push(ev);
    if (!this.#draining) queueMicrotask(() => this.#drain());
  }

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
        for (const e of effects) this.#execute(e);
      }
    } finally {
      this.#draining = false;
    }
  }

  #execute(e: Effect): void {
    switch (e.kind) {
      case "txn":
        this.#runTxn(e);
        return;
      case "prepare":
        this.#workers.prepare(e);
        return;
      case "spawn":
        this.#workers.spawn(e);
        return;
      case "abort":
        this.#workers.abort(
          e,
          this.view.tasks.get(e.task_id)?.value.spec_id ??
            e.task_id.slice(0, e.task_id.indexOf(".")),
        );
        return;
      case "kill":
        this.log.info("killing worker", {
          task_id: e.task_id,
          fence: e.fence,
          reason: e.reason,
        });
        this.deps.pool.kill({
          task_id: e.task_id,
          claim_token: String(e.fence),
          grace_ms: e.grace_ms,
        })
          .catch((err) =>
            this.log.error("kill failed", {
              task_id: e.task_id,
              error: String(err),
            })
          );
        return;
      case "drop_worker":
        return;
      case "log":
        this.log.log(e.level, e.msg, e.fields);
        return;
      case "emit":
        this.log.info("event", { event: e.event, ...e.payload });
        return;
    }
  }

  async #runTxn(e: TxnEffect): Promise<void> {
    const at = () => Date.now();
    try {
      const res = await this.#txns.run(e.compare, e.success, txnKeys(e));
      this.#markEtcd(true);
      this.#countTxn(e, res.ok);
      if (res.ok) {
        this.log.debug("txn committed", {
          reason: e.reason,
          task_id: e.task_id,
          revision: res.revision,
        });
      } else {
        this.log.debug("txn compare failed", {
          reason: e.reason,
          task_id: e.task_id,
        });
      }
      this.push({
        type: "txn_done",
        at: at(),
        effect: e,
        ok: res.ok,
        revision: res.revision,
        error: null,
        reads: res.reads,
      });
    } catch (err) {
      const down = isUnreachable(err);
      // While etcd is known to be down every retry would log the same line.
      const quiet = down && !this.#etcdUp;
      if (down) this.#markEtcd(false, err);
      this.log.log(quiet ? "debug" : "warn", "txn failed", {
        reason: e.reason,
        task_id: e.task_id,
        error: unreachableReason(err),
      });
      if (e.reason === "finish" && down) await this.#park(e);
      // Give etcd a moment before the same decision is retried.
      await new Promise((r) => setTimeout(r, 200));
      this.push({
        type: "txn_done",
        at: at(),
        effect: e,
        ok: false,
        revision: 0,
        error: String(err),
      });
    }
  }

  #countTxn(e: TxnEffect, ok: boolean): void {
    const m = this.metrics;
    if (e.reason === "claim") {
      if (ok) {
        m.inc("boi_claims_total");
        this.log.info("claimed", { task_id: e.task_id, attempt: e.attempt });
      } else m.inc("boi_claim_conflicts_total");
    }
    if (e.reason === "requeue" && ok) {
      m.inc("boi_lease_expired_requeues_total");
      this.log.info("requeued after lease expiry", { task_id: e.task_id });
    }
    if (e.reason === "finish") {
      if (ok) {
        const env = JSON.parse(
          e.success[0].op === "put" ? e.success[0].value : "{}",
        );
        this.log.info("task finished", {
          task_id: e.task_id,
          state: env.state,
          exit_code: env.exit_code,
          attempts: env.attempts,
        });
        if (env.started_at && env.finished_at) {
          m.observe(
            "boi_task_duration_seconds",
            (env.finished_at - env.started_at) / 1000,
          );
        }
      }
    }
  }

  /** Parks a result etcd cannot take now in the pending-flush file (fsynced first). */
  async #park(e: TxnEffect): Promise<void> {
    const w = this.view.workers.get(e.task_id);
    const fence = e.compare.find((c) => c.target === "create")?.equals;
    if (!w || !w.result || fence === undefined || w.fence !== fence) return;
    try {
      await this.#flush.append({
        task_id: w.task_id,
        fence,
        attempt: w.attempt,
        code: w.result.code,
        signal: w.result.signal,
        error: w.result.error,
        lost: w.result.lost,
        started_at: w.started_at,
        finished_at: w.result.finished_at,
        parked_at: Date.now(),
      });
    } catch (err) {
      // Not durable: keep it in memory and let the finish be retried instead.
      this.log.error("pending flush: append failed", {
        task_id: w.task_id,
        error: String(err),
      });
      return;
    }
    this.log.warn("result parked in pending flush", {
      task_id: w.task_id,
      fence,
    });
    this.push({
      type: "result_flushed",
      at: Date.now(),
      task_id: w.task_id,
      fence,
    });
  }

  /** Replays parked results oldest first: commit under the fence, or drop as superseded. */
  async #replayFlush(): Promise<void> {
    if (this.#replaying || this.#stopping || this.#flush.entries.length === 0) {
      return;
    }
    this.#replaying = true;
    try {
      for (const entry of [...this.#flush.entries]) {
        await this.#replayOne(entry);
        await this.#flush.remove(entry.task_id, entry.fence);
        this.push({
          type: "flush_resolved",
          at: Date.now(),
          task_id: entry.task_id,
        });
      }
    } catch (err) {
      if (isUnreachable(err)) this.#markEtcd(false, err);
      else {this.log.error("pending flush replay failed", {
          error: String(err),
        });}
    } finally {
      this.#replaying = false;
    }
  }

  async #replayOne(entry: FlushEntry): Promise<void> {
    const { client } = this.deps;
    const claimKey = this.keys.claim(entry.task_id);
    const taskKey = this.keys.task(entry.task_id);
    for (let i = 0; i < 10; i++) {
      const [claimRes, taskRes] = await Promise.all([
        client.kv.range({ key: Buffer.from(claimKey) }, deadline(3000)),
        client.kv.range({ key: Buffer.from(taskKey) }, deadline(3000)),
      ]);
      this.#markEtcd(true);
      const kvOf = (r: typeof claimRes) =>
        r.kvs[0] ? toChange(r.kvs[0], false) : null;
      const step = decideReplay(
        this.view.config,
        this.keys,
        entry,
        kvOf(claimRes),
        kvOf(taskRes),
        Date.now(),
      );
      if (step.kind === "already") {
        this.log.info("pending flush: result was already committed", {
          task_id: entry.task_id,
        });
        return;
      }
      if (step.kind === "superseded") {
        this.log.warn("result superseded", {
          task_id: entry.task_id,
          fence: entry.fence,
          current_claim_fence: step.current_claim_fence,
          state: step.state,
        });
        this.#execute({
          kind: "emit",
          event: "task.result_superseded",
          payload: { task_id: entry.task_id, fence: entry.fence },
        });
        return;
      }
      const res = await runTxn(client, step.compare, step.success);
      if (res.ok) {
        this.log.info("result committed from pending flush", {
          task_id: entry.task_id,
          fence: entry.fence,
          state: step.next.state,
          attempts: step.next.attempts,
        });
        return;
      }
    }
    this.log.warn("pending flush: envelope kept changing, will retry", {
      task_id: entry.task_id,
    });
    throw new Error(`pending flush: could not commit ${entry.task_id}`);
  }

  /** Grants a lease and writes the node and caps records under it. */
  async #register(): Promise<void> {
    const { client, config } = this.deps;
    const ttl = config.lease_ttl_s;
    const waitUntil = Date.now() + (ttl + 3) * 1000;
    for (let delay = 100;; delay = Math.min(delay * 2, 2000)) {
      if (this.#stopping) return;
      try {
        // deno-lint-ignore prefer-const
        let lease: LeaseKeeper;
        const grantedAt = Date.now();
        lease = await LeaseKeeper.grant(client, ttl, {
          onLost: () => this.#onLeaseLost(lease),
          onAlive: (validUntil) => {
            this.#markEtcd(true);
            this.push({
              type: "lease_renewed",
              at: Date.now(),
              lease_id: lease.id,
              valid_until: validUntil,
            });
          },
          onUnreachable: (err) => {
            if (isUnreachable(err)) this.#markEtcd(false, err);
          },
        });
        const id = lease.id;
        const rec: NodeRecord = {
          node_id: config.node_id,
          addr: this.deps.addr,
          version: VERSION,
          started_at: this.startedAt,
          pid: Deno.pid,
        };
        const caps = this.#caps();
        const res = await runTxn(client, [
          { key: this.keys.node(config.node_id), target: "version", equals: 0 },
        ], [
          {
            op: "put",
            key: this.keys.node(config.node_id),
            value: JSON.stringify(rec),
            lease: id,
          },
          {
            op: "put",
            key: this.keys.caps(config.node_id),
            value: JSON.stringify(caps),
            lease: id,
          },
        ]);
        if (!res.ok) {
          await lease.revoke().catch(() => {});
          // A previous incarnation's record lives until its lease expires.
          if (Date.now() > waitUntil) {
            throw new Error(
              `node id ${config.node_id} is already registered by a live node: pick another BOI_NODE_ID`,
            );
          }
          this.log.info(
            "waiting for a previous registration of this node id to expire",
          );
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        this.#capsPub.reset(res.revision, JSON.stringify(caps));
        this.#lease = lease;
        this.#markEtcd(true);
        this.log.info("registered", { lease_id: id, revision: res.revision });
        // Plugin records went with any earlier lease: write them all again.
        for (const p of this.#pluginPublishers.values()) p.reset(0, null);
        queueMicrotask(() => this.#publishPlugins());
        this.push({
          type: "lease_granted",
          at: Date.now(),
          lease_id: id,
          valid_until: grantedAt + ttl * 1000,
        });
        return;
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        this.#markEtcd(false, err);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  #onLeaseLost(lease: LeaseKeeper): void {
    if (this.#lease !== lease || this.#stopping) return;
    this.#lease = null;
    this.log.warn(
      "lease lost: stop claiming, kill workers of lost claims, register again",
      { lease_id: lease.id },
    );
    this.push({ type: "lease_lost", at: Date.now() });
    if (this.#registering) return;
    this.#registering = true;
    this.#register().catch((e) =>
      this.log.error("re-registration failed", { error: String(e) })
    )
      .finally(() => this.#registering = false);
  }

  #caps(): CapsRecord {
    return capsRecord(this.view, Date.now(), this.#flush.entries.length);
  }

  /** Publishes workers_busy/health at most once a second, only when they changed. */
  #publishCaps(): void {
    const lease = this.view.lease_id;
    if (lease === null || this.#stopping) return;
    this.#publishPlugins();
    const caps = this.#caps();
    if (caps.dynamic.health !== this.#health) {
      this.#health = caps.dynamic.health;
      const event = this.#health === "degraded"
        ? "node.degraded"
        : "node.healed";
      this.log.warn(event, {
        reason: "claim-failure cooldown",
        expiries: this.view.claim_expiries,
      });
      this.#execute({
        kind: "emit",
        event,
        payload: { node_id: this.deps.config.node_id },
      });
    }
    this.#capsPub.publish(JSON.stringify(caps), lease);
  }

  async #relistAndWatch(): Promise<void> {
    for (let delay = 100;; delay = Math.min(delay * 2, 2000)) {
      if (this.#stopping) return;
      try {
        const { revision, kvs } = await listPrefix(
          this.deps.client,
          this.keys.prefix,
        );
        this.push({ type: "relist", at: Date.now(), revision, kvs });
        this.#watcher = await watchPrefix(
          this.deps.client,
          this.keys.prefix,
          revision + 1,
          (changes) => {
            this.#markEtcd(true);
            this.push({ type: "changes", at: Date.now(), changes });
          },
          (err) => this.#onWatchError(err),
        );
        this.log.info("watching", {
          prefix: this.keys.prefix,
          from_revision: revision + 1,
          keys: kvs.length,
        });
        return;
      } catch (err) {
        if (!isUnreachable(err)) {
          this.log.warn("list/watch failed", { error: String(err) });
        }
        this.#markEtcd(false, err);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Compaction or a cancelled watch: re-list, rebuild the view, resume. */
  #onWatchError(err: Error): void {
    if (this.#stopping) return;
    this.log.warn("watch lost: re-listing", { error: err.message });
    const w = this.#watcher;
    this.#watcher = null;
    w?.cancel().catch(() => {});
    this.#relistAndWatch();
  }

  #markEtcd(up: boolean, err?: unknown): void {
    if (up) this.#lastContact = Date.now();
    // One failed call (say, on a dead member of three) is not an outage:
    // etcd is unreachable only once nothing has succeeded for a while.
    const grace = Math.max(1000, (this.deps.config.lease_ttl_s * 1000) / 2);
    if (!up && Date.now() - this.#lastContact < grace) return;
    this.metrics.set("boi_etcd_up", up ? 1 : 0);
    if (up === this.#etcdUp) return;
    this.#etcdUp = up;
    if (up) {
      this.log.info("etcd reachable again", {
        down_ms: Date.now() - (this.#etcdDownSince ?? Date.now()),
      });
      this.#etcdDownSince = null;
      queueMicrotask(() => this.#replayFlush());
    } else {
      this.#etcdDownSince = Date.now();
      this.log.warn("etcd_unreachable", {
        since: this.#etcdDownSince,
        error: unreachableReason(err),
      });
    }
  }

  #reportEtcd(): void {
    if (!this.#etcdUp) {
      this.log.warn(`etcd_unreachable since=${this.#etcdDownSince}`);
    }
  }

  #declareMetrics(): void {
    const m = this.metrics;
    m.declare("boi_etcd_up", "gauge", "1 when the last etcd call succeeded");
    m.declare(
      "boi_etcd_unreachable_seconds",
      "gauge",
      "seconds since etcd became unreachable, 0 when up",
    );
    m.declare("boi_tasks", "gauge", "tasks in this node's view by state");
    m.declare("boi_claims_total", "counter", "claims won by this node");
    m.declare(
      "boi_claim_conflicts_total",
      "counter",
      "claim transactions whose compare failed",
    );
    m.declare(
      "boi_lease_expired_requeues_total",
      "counter",
      "tasks re-queued by this node after a lease expiry",
    );
    m.declare(
      "boi_dispatch_rejected_etcd_unreachable_total",
      "counter",
      "dispatches refused while etcd was unreachable",
    );
    m.declare("boi_workers_busy", "gauge", "workers running on this node");
    m.declare(
      "boi_task_duration_seconds",
      "histogram",
      "task run time on this node",
    );
    m.declare(
      "boi_dispatch_to_start_seconds",
      "histogram",
      "dispatch to worker start on this node",
    );
    m.set("boi_etcd_up", 1);
    m.collect(() => {
      m.reset("boi_tasks");
      const counts = new Map<string, number>();
      for (const t of this.view.tasks.values()) {
        counts.set(t.value.state, (counts.get(t.value.state) ?? 0) + 1);
      }
      for (const [state, n] of counts) m.set("boi_tasks", n, { state });
      m.set("boi_workers_busy", this.view.workers.size);
      m.set("boi_pending_flush_bytes", this.#flush.bytes);
      m.set(
        "boi_etcd_unreachable_seconds",
        this.#etcdDownSince === null
          ? 0
          : (Date.now() - this.#etcdDownSince) / 1000,
      );
    });
  }

  /** Graceful stop: no new claims, kill workers, release the lease so others take over now. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    const workers = [...this.view.workers.values()];
    await Promise.all(
      workers.map((w) =>
        this.deps.pool.kill({
          task_id: w.task_id,
          claim_token: String(w.fence),
          grace_ms: 2000,
        }).catch(() => {})
      ),
    );
    await this.#watcher?.cancel().catch(() => {});
    await this.#lease?.revoke().catch(() => {});
    this.log.info("node stopped", { killed_workers: workers.length });
  }
}
