/**
 * One simulated node: the real core (reducer, handlers, decide, txn builders)
 * driven by a model of the shell that does what `node/shell` does, against
 * the etcd model on virtual time: the event loop, the worker runner (Prepare,
 * Spawn, Kill, exit, crash) and the faults here; the etcd client side in
 * sim_etcd_side.ts, registration and the watch in sim_membership.ts.
 */
import {
  type AbortEffect,
  applyEffects,
  applyEvent,
  type Effect,
  emptyView,
  handle,
  type MutableView,
  type NodeEvent,
  type PrepareEffect,
  type SpawnEffect,
} from "../core/mod.ts";
import { capsRecord } from "../core/caps_record.ts";
import type { FlushEntry } from "../schema.ts";
import { PoolModel } from "./pool_model.ts";
import { SimEtcdSide } from "./sim_etcd_side.ts";
import { HooksModel } from "./hooks_model.ts";
import { SimMembership } from "./sim_membership.ts";
import { RouterModel } from "./router_model.ts";
import type { Checker } from "./invariants.ts";
import type { World } from "./world.ts";

/** The simulator's orphan grace: virtual schedules last seconds, not hours. */
export const ORPHAN_GRACE_SIM_MS = 1000;

export class SimNode {
  readonly view: MutableView;
  readonly pool: PoolModel;
  alive = true;
  paused = false;
  workspaceUp = true;
  /** Handler runs so far: "one decision" in the invariants. */
  decisions = 0;
  #backlog: (() => void)[] = [];
  #queue: NodeEvent[] = [];
  #draining = false;
  readonly etcdSide: SimEtcdSide;
  readonly hooks: HooksModel;
  readonly membership: SimMembership;
  readonly router: RouterModel;

  constructor(
    readonly w: World,
    readonly id: string,
    readonly incarnation: number,
    readonly check: Checker,
  ) {
    const p = w.params;
    this.view = emptyView({
      node_id: id,
      workers_max: 4,
      static_caps: { os: "linux", arch: "x86_64" },
      spill_after_ms: 1000,
      spill_step_ms: 100,
      retry_backoff_ms: 200,
      cancel_grace_ms: 1000,
      claim_failure_window_ms: 300_000,
      claim_failure_limit: 3,
      claim_failure_cooldown_ms: 300_000,
      router: w.knobs.routers,
      spec_retention_ms: w.knobs.spec_retention_ms,
      orphan_grace_ms: ORPHAN_GRACE_SIM_MS,
    });
    this.router = new RouterModel(this);
    this.pool = new PoolModel(w.sched, w.rng);
    this.etcdSide = new SimEtcdSide(this);
    let disk = w.hooksDisks.get(id);
    if (!disk) {
      w.hooksDisks.set(id, disk = { wal: [], hwm: 0, sink: new Map() });
    }
    this.hooks = new HooksModel(this, disk);
    this.membership = new SimMembership(this);
    void p;
  }

  get flush(): FlushEntry[] {
    let f = this.w.flushFiles.get(this.id);
    if (!f) this.w.flushFiles.set(this.id, f = []);
    return f;
  }

  /** Runs `fn` after `delay` in this incarnation; held while paused, dropped once dead. */
  later(delay: number, fn: () => void): void {
    this.w.sched.after(delay, () => {
      if (!this.alive) return;
      if (this.paused) this.#backlog.push(fn);
      else fn();
    });
  }

  start(): void {
    for (const e of this.flush) {
      this.push({
        type: "result_flushed",
        at: this.w.sched.now,
        task_id: e.task_id,
        fence: e.fence,
      });
    }
    this.membership.register(100);
    this.hooks.start();
    const every = (ms: number, fn: () => void) => {
      const loop = () => {
        fn();
        this.later(ms, loop);
      };
      this.later(ms, loop);
    };
    every(
      this.w.params.tick_ms,
      () => this.push({ type: "tick", at: this.now }),
    );
    every(1000, () => this.etcdSide.publishCaps());
    every(2000, () => this.etcdSide.replayFlush());
  }

  /** Event time: whole milliseconds, as the real shell's Date.now(). */
  get now(): number {
    return Math.floor(this.w.sched.now);
  }

  // --- faults -----------------------------------------------------------

  crash(): void {
    this.alive = false;
    this.membership.stop();
    // The plugins see their stdin close and exit, killing their workers.
    this.pool.crash();
    this.w.trace(`${this.id} crashed`);
  }

  pause(ms: number): void {
    this.paused = true;
    this.w.trace(`${this.id} paused ${ms.toFixed(0)}ms`);
    this.w.sched.after(ms, () => {
      if (!this.alive) return;
      this.paused = false;
      this.w.trace(`${this.id} resumed`);
      const backlog = this.#backlog;
      this.#backlog = [];
      for (const fn of backlog) {
        if (this.alive && !this.paused) fn();
        else this.#backlog.push(fn);
      }
      this.membership.pump();
    });
  }

  crashPool(restartMs: number): void {
    this.pool.crash();
    this.w.trace(`${this.id} pool crashed`);
    this.later(0, () => this.#pluginsHealth(false));
    this.later(restartMs, () => {
      this.pool.up = true;
      this.#pluginsHealth(true);
    });
  }

  #pluginsHealth(healthy: boolean): void {
    this.push({ type: "plugins_health", at: this.now, healthy });
    this.etcdSide.publishCaps();
  }

  // --- event loop ---------------------------------------------------------

  push(ev: NodeEvent): void {
    this.#queue.push(ev);
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        const e = this.#queue.shift()!;
        applyEvent(this.view, this.w.keys, e);
        this.check.afterApply(this);
        const effects = handle(this.view, this.w.keys, e);
        applyEffects(this.view, effects, e.at);
        this.decisions++;
        if (this.w.tracing && effects.length > 0) {
          this.w.trace(
            `${this.id} ${e.type} → ${effects.map(describe).join(", ")}`,
          );
        }
        for (const x of effects) this.#execute(x);
        this.check.afterDecision(this);
      }
    } finally {
      this.#draining = false;
    }
  }

  #execute(e: Effect): void {
    switch (e.kind) {
      case "txn":
        return this.etcdSide.txn(e);
      case "prepare":
        return this.#prepare(e);
      case "spawn":
        return this.#spawn(e);
      case "abort":
        return this.#abort(e);
      case "emit":
        this.check.onEmit(this, e.event, e.payload);
        return this.hooks.emit(e.event, e.payload);
      case "kill":
        this.check.onKillSent(this, e.task_id, e.fence);
        return this.later(this.w.lat(), () => {
          this.check.onKillArrived(this, e.task_id, e.fence);
          const lost = this.w.knobs.lost_kill > 0 &&
            this.w.rng.chance(this.w.knobs.lost_kill);
          if (!lost) return this.pool.kill(e.task_id, e.fence, e.grace_ms);
          this.push({
            type: "kill_failed",
            at: this.now,
            task_id: e.task_id,
            fence: e.fence,
          });
        });
      case "route":
        return this.router.route(e);
      default:
        return;
    }
  }

  // --- workers ------------------------------------------------------------

  #exit(
    taskId: string,
    fence: number,
    r: {
      code: number | null;
      signal: string | null;
      error: string | null;
      lost: boolean;
    },
  ): void {
    this.push({
      type: "worker_exit",
      at: this.now,
      task_id: taskId,
      fence,
      ...r,
    });
  }

  #prepare(e: PrepareEffect): void {
    this.later(this.w.lat(), () => {
      if (!this.workspaceUp) {
        return this.#exit(e.task_id, e.fence, {
          code: null,
          signal: null,
          error: "workspace down",
          lost: true,
        });
      }
      const slow = (this.w.slowPrepareUntil.get(this.id) ?? 0) > this.now;
      this.later(slow ? 3000 : this.w.lat() * 3, () =>
        this.push({
          type: "worker_prepared",
          at: this.now,
          task_id: e.task_id,
          fence: e.fence,
          workdir: `/ws/${e.task_id}`,
          env: {},
        }));
    });
  }

  #spawn(e: SpawnEffect): void {
    const task = e.task_id;
    this.check.onSpawnSent(this, task, e.fence);
    this.later(
      this.w.lat(),
      () =>
        this.pool.spawn(
          task,
          e.fence,
          String(e.envelope.run),
          (ev) =>
            this.later(this.w.lat(), () => {
              if (ev.kind === "started") {
                this.push({
                  type: "worker_started",
                  at: this.now,
                  task_id: task,
                  fence: e.fence,
                  pid: ev.pid,
                });
              } else if (ev.kind === "exit") {
                this.#exit(task, e.fence, {
                  code: ev.code,
                  signal: ev.signal,
                  error: null,
                  lost: false,
                });
              } else {
                this.#exit(task, e.fence, {
                  code: null,
                  signal: null,
                  error: ev.error,
                  lost: true,
                });
              }
            }),
        ),
    );
  }

  #abort(e: AbortEffect): void {
    this.later(this.w.lat(), () =>
      this.#exit(e.task_id, e.fence, {
        code: null,
        signal: null,
        error: `not started: ${e.reason}`,
        lost: true,
      }));
  }

  /** Watch deliveries resume (a partition healed, etcd is back). */
  pump(): void {
    this.membership.pump();
  }

  /** The caps this node would publish now (the checker compares them with etcd's). */
  capsNow(): string {
    return JSON.stringify(
      capsRecord(this.view, this.now, this.flush.length).dynamic,
    );
  }
}

function describe(e: Effect): string {
  switch (e.kind) {
    case "txn":
      return `${e.reason}(${e.task_id})`;
    case "prepare":
    case "spawn":
    case "abort":
    case "kill":
    case "drop_worker":
      return `${e.kind}(${e.task_id}@${e.fence})`;
    case "emit":
      return `emit ${e.event}`;
    case "log":
      return `log ${e.msg}`;
    case "provision":
      return `provision ${e.action}(${e.req_id})`;
    case "route":
      return `route(${e.task_id}#${e.sv})`;
  }
}
