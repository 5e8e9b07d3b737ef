/**
 * One simulated node: the real core (reducer, handlers, decide, txn builders)
 * driven by a model of the shell that does what `node/shell` does — group of
 * effects per event, transactions with latencies and lost replies, lease
 * keepalive, list-then-watch with re-list, the caps publisher, pending flush
 * and its replay — against the etcd model, on virtual time.
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
  type TxnEffect,
} from "../core/mod.ts";
import { capsRecord } from "../core/caps_record.ts";
import { decideReplay } from "../core/flush_replay.ts";
import type { FlushEntry, NodeRecord } from "../schema.ts";
import type { KeyChange } from "../core/events.ts";
import { txnKeys } from "../core/txns.ts";
import { ModelError } from "./etcd_model.ts";
import { PoolModel } from "./pool_model.ts";
import { type CasPort, CasPublisher } from "../shell/cas_publisher.ts";
import type { Checker } from "./invariants.ts";
import type { World } from "./world.ts";

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
  #keeper = 0;
  #lease: string | null = null;
  readonly #capsPub: CasPublisher;
  #delivered = 0;
  #unsub: (() => void) | null = null;
  #pumping = false;
  #replaying = false;

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
    });
    this.pool = new PoolModel(w.sched, w.rng);
    this.#capsPub = new CasPublisher(this.#casPort(), w.keys.caps(id));
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
    this.#register(100);
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
    every(1000, () => this.#publishCaps());
    every(2000, () => this.#replayFlush());
  }

  /** Event time: whole milliseconds, as the real shell's Date.now(). */
  get now(): number {
    return Math.floor(this.w.sched.now);
  }

  // --- faults -----------------------------------------------------------

  crash(): void {
    this.alive = false;
    this.#unsub?.();
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
      this.pump();
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
    this.#publishCaps();
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
        return this.#txn(e);
      case "prepare":
        return this.#prepare(e);
      case "spawn":
        return this.#spawn(e);
      case "abort":
        return this.#abort(e);
      case "emit":
        return this.check.onEmit(this, e.event, e.payload);
      case "kill":
        this.check.onKillSent(this, e.task_id, e.fence);
        return this.later(this.w.lat(), () => {
          this.check.onKillArrived(this, e.task_id, e.fence);
          this.pool.kill(e.task_id, e.fence, e.grace_ms);
        });
      default:
        return;
    }
  }

  // --- transactions -------------------------------------------------------

  #txn(e: TxnEffect): void {
    this.check.onTxnSent(this, e);
    if (!this.w.reachable(this.id)) {
      return this.later(this.#unreachableMs(), () => this.#txnFailed(e, true));
    }
    this.later(this.w.lat(), () => {
      if (!this.w.reachable(this.id)) return this.#txnFailed(e, true);
      let ok: boolean;
      let reads: KeyChange[] | undefined;
      const t = { ...e, read_on_failure: txnKeys(e) };
      try {
        const [r] = this.w.etcd.txn(`${this.id}:${e.reason}`, [t]);
        ok = r.ok;
        if (!ok) reads = this.#reads(t.read_on_failure, r.reads);
      } catch (err) {
        if (!(err instanceof ModelError)) throw err;
        return this.later(this.w.lat(), () => this.#txnFailed(e, false));
      }
      const revision = this.w.etcd.revision;
      if (ok && this.w.rng.chance(this.w.knobs.lost_reply)) {
        this.w.trace(`${this.id} reply lost: ${e.reason} ${e.task_id}`);
        return this.later(this.w.lat(), () => this.#txnFailed(e, true));
      }
      if (ok && this.w.rng.chance(this.w.knobs.endpoint_retry)) {
        // The client retried the committed request on another member.
        this.w.trace(`${this.id} retried on another endpoint: ${e.reason}`);
        const [r] = this.w.etcd.txn(`${this.id}:${e.reason}`, [t]);
        ok = r.ok;
        if (!ok) reads = this.#reads(t.read_on_failure, r.reads);
      }
      this.later(this.w.lat(), () => {
        // The answer arrives: from here the node knows the compare failed.
        if (!ok) this.check.onTxnConflict(this, e);
        this.push({
          type: "txn_done",
          at: this.now,
          effect: e,
          ok,
          revision: ok ? revision : this.w.etcd.revision,
          error: null,
          reads,
        });
      });
    });
  }

  /** Failure-branch reads as watch changes; an absent key is a delete at the current revision. */
  #reads(keys: string[], got: (KeyChange | null)[]): KeyChange[] {
    const rev = this.w.etcd.revision;
    return keys.map((key, i) => got[i] ?? { key, revision: rev, kv: null });
  }

  #unreachableMs(): number {
    // Connection refused answers at once; a black-holed partition waits for the deadline.
    return this.w.etcd.up ? 1000 : 5;
  }

  #txnFailed(e: TxnEffect, unreachable: boolean): void {
    if (e.reason === "finish" && unreachable) this.#park(e);
    this.later(200, () =>
      this.push({
        type: "txn_done",
        at: this.now,
        effect: e,
        ok: false,
        revision: 0,
        error: unreachable ? "unavailable" : "refused",
      }));
  }

  #park(e: TxnEffect): void {
    const w = this.view.workers.get(e.task_id);
    const fence = e.compare.find((c) => c.target === "create")?.equals;
    if (!w || !w.result || fence === undefined || w.fence !== fence) return;
    this.flush.push({
      task_id: w.task_id,
      fence,
      attempt: w.attempt,
      code: w.result.code,
      signal: w.result.signal,
      error: w.result.error,
      lost: w.result.lost,
      started_at: w.started_at,
      finished_at: w.result.finished_at,
      parked_at: this.now,
    });
    this.push({
      type: "result_flushed",
      at: this.now,
      task_id: w.task_id,
      fence,
    });
  }

  #replayFlush(): void {
    if (this.#replaying || this.flush.length === 0) return;
    if (!this.w.reachable(this.id)) return;
    this.#replaying = true;
    this.later(this.w.lat(), () => {
      this.#replaying = false;
      for (const entry of [...this.flush]) {
        if (!this.w.reachable(this.id)) return;
        const step = decideReplay(
          this.view.config,
          this.w.keys,
          entry,
          this.w.etcd.read(this.w.keys.claim(entry.task_id)),
          this.w.etcd.read(this.w.keys.task(entry.task_id)),
          this.now,
        );
        if (step.kind === "commit") {
          const [r] = this.w.etcd.txn(`${this.id}:replay`, [step]);
          if (!r.ok) return; // changed under us: the next round re-reads
        }
        const files = this.flush;
        files.splice(files.indexOf(entry), 1);
        this.push({
          type: "flush_resolved",
          at: this.now,
          task_id: entry.task_id,
        });
      }
    });
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

  // --- lease, registration, watch -----------------------------------------

  #register(delay: number): void {
    if (!this.w.reachable(this.id)) {
      return this.later(delay, () => this.#register(Math.min(delay * 2, 2000)));
    }
    this.later(this.w.lat(), () => {
      if (!this.w.reachable(this.id)) return this.#register(delay);
      const etcd = this.w.etcd;
      const grantedAt = this.now;
      const lease = etcd.grant(this.w.params.lease_ttl_ms);
      const keys = this.w.keys;
      const rec: NodeRecord = {
        node_id: this.id,
        addr: "sim:1",
        version: "sim",
        started_at: 0,
        pid: this.incarnation,
      };
      const caps = capsRecord(this.view, this.now, this.flush.length);
      const [r] = etcd.txn(`${this.id}:register`, [{
        compare: [{ key: keys.node(this.id), target: "version", equals: 0 }],
        success: [
          {
            op: "put",
            key: keys.node(this.id),
            value: JSON.stringify(rec),
            lease,
          },
          {
            op: "put",
            key: keys.caps(this.id),
            value: JSON.stringify(caps),
            lease,
          },
        ],
      }]);
      if (!r.ok) {
        etcd.revoke(lease);
        return this.later(500, () => this.#register(delay));
      }
      this.#capsPub.reset(etcd.revision, JSON.stringify(caps));
      this.#lease = lease;
      const keeper = ++this.#keeper;
      this.w.trace(`${this.id} registered lease ${lease}`);
      this.later(this.w.lat(), () => {
        this.push({
          type: "lease_granted",
          at: this.now,
          lease_id: lease,
          valid_until: grantedAt + this.w.params.lease_ttl_ms,
        });
        if (this.#unsub === null) this.#relist();
      });
      const beat = () => {
        if (keeper !== this.#keeper) return;
        if (this.w.reachable(this.id)) {
          const sent = this.now;
          if (etcd.keepalive(lease) === 0) return this.#leaseLost(keeper);
          this.later(this.w.lat(), () =>
            this.push({
              type: "lease_renewed",
              at: this.now,
              lease_id: lease,
              valid_until: sent + this.w.params.lease_ttl_ms,
            }));
        }
        this.later(this.w.params.lease_ttl_ms / 3, beat);
      };
      this.later(this.w.params.lease_ttl_ms / 3, beat);
    });
  }

  #leaseLost(keeper: number): void {
    if (keeper !== this.#keeper) return;
    this.#keeper++;
    this.#lease = null;
    this.w.trace(`${this.id} lease lost`);
    this.push({ type: "lease_lost", at: this.now });
    this.#register(100);
  }

  #relist(): void {
    if (!this.w.reachable(this.id)) {
      return this.later(200, () => this.#relist());
    }
    this.later(this.w.lat(), () => {
      if (!this.w.reachable(this.id)) return this.#relist();
      const { revision, kvs } = this.w.etcd.list(this.w.keys.prefix);
      this.push({ type: "relist", at: this.now, revision, kvs });
      this.#delivered = revision;
      this.#unsub?.();
      this.#unsub = this.w.etcd.subscribe(() => this.pump());
      this.pump();
    });
  }

  /** Delivers watch history after the last delivered revision, with a delay. */
  pump(): void {
    if (this.#pumping || !this.alive || this.#unsub === null) return;
    if (!this.w.reachable(this.id)) return; // stalls; `onHeal` pumps again
    const pending = this.w.etcd.since(this.#delivered);
    if (pending === null) {
      this.#unsub();
      this.#unsub = null;
      this.w.trace(`${this.id} watch compacted: re-list`);
      return this.later(this.w.lat(), () => this.#relist());
    }
    if (pending.length === 0) return;
    this.#pumping = true;
    this.later(this.w.rng.next() * this.w.knobs.watch_delay_max, () => {
      this.#pumping = false;
      if (!this.w.reachable(this.id) || this.#unsub === null) return;
      const batch = this.w.etcd.since(this.#delivered);
      if (batch === null) return this.pump();
      if (batch.length === 0) return;
      // A watcher that fell behind gets its backlog in one large response, as from etcd.
      const take = batch.length > 4
        ? batch
        : batch.slice(0, 1 + this.w.rng.int(0, 3));
      const changes = take.flatMap((h) => h.changes);
      this.#delivered = take[take.length - 1].revision;
      this.push({ type: "changes", at: this.now, changes });
      if (this.w.rng.chance(this.w.knobs.dup_watch)) {
        this.later(
          this.w.lat(),
          () => this.push({ type: "changes", at: this.now, changes }),
        );
      }
      this.pump();
    });
  }

  // --- caps ---------------------------------------------------------------

  #publishCaps(): void {
    const lease = this.view.lease_id;
    if (lease === null) return;
    const caps = capsRecord(this.view, this.now, this.flush.length);
    this.#capsPub.publish(JSON.stringify(caps), lease);
  }

  /** The etcd model behind the real CAS publisher: latencies, lost replies, unreachable. */
  #casPort(): CasPort {
    return {
      put: (key, value, lease, expect, done) => {
        if (!this.w.reachable(this.id)) {
          return this.later(
            this.#unreachableMs(),
            () => done({ kind: "error", error: "unreachable" }),
          );
        }
        this.later(this.w.lat(), () => {
          if (!this.w.reachable(this.id)) {
            return done({ kind: "error", error: "unreachable" });
          }
          let r;
          try {
            [r] = this.w.etcd.txn(`${this.id}:caps`, [{
              compare: [{ key, target: "mod", equals: expect }],
              success: [{ op: "put", key, value, lease }],
              read_on_failure: [key],
            }]);
          } catch (err) {
            if (!(err instanceof ModelError)) throw err;
            return this.later(
              this.w.lat(),
              () => done({ kind: "error", error: err }),
            );
          }
          const rev = this.w.etcd.revision;
          if (r.ok && this.w.rng.chance(this.w.knobs.lost_reply)) {
            return this.later(
              this.w.lat(),
              () => done({ kind: "error", error: "reply lost" }),
            );
          }
          const current = r.reads[0]?.kv?.mod_revision ?? 0;
          this.later(
            this.w.lat(),
            () =>
              done(
                r.ok
                  ? { kind: "ok", revision: rev }
                  : { kind: "conflict", current },
              ),
          );
        });
      },
    };
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
  }
}
