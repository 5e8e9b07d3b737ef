/**
 * The node's hooks (SPEC §8): takes every `emit` effect, keeps the ones the
 * hooks plugin subscribes to, and delivers them by its tier. The shell calls
 * `start` once etcd answers, `emit` per effect and `stop` at shutdown;
 * back-pressure reaches the core as a `hooks_backpressure` event.
 * @module
 */
import type { EmitEffect, TxnEffect } from "../core/effects.ts";
import { committedEvents } from "../core/hook_events.ts";
import type { HookTier } from "../plugins/contracts.ts";
import {
  EVENT_PAYLOAD_CHECKS,
  EVENT_PAYLOADS,
  isEventKind,
} from "./event_schemas.ts";
import { fastSafeParse } from "../schema_fast.ts";
import { AuditDelivery, BestEffortDelivery } from "./delivery.ts";
import { compileSubscriptions, type Subscriptions } from "./subscriptions.ts";
import { WalFiles } from "./wal.ts";
import { DEFAULT_WINDOW, type Intent, unackedCount } from "./wal_state.ts";
import { recover } from "./wal_recover.ts";
import { intentOutcome, missingEvents } from "./intents.ts";
import { CommitEvents, type PendingCommit } from "./commit_events.ts";
import { HwmStore } from "./hwm.ts";
import type { NodeHooksOptions, QueueStats } from "./options.ts";
import { now } from "../shell/clock.ts";

export { HwmRecord } from "../schema.ts";
export { guardTxn } from "./intents.ts";
export type { HooksSettings, NodeHooksOptions, QueueStats } from "./options.ts";

/** Kinds a committed transition of this node emits (core/hook_events.ts committedEvents). */
const TRANSITION_KINDS = new Set([
  "task.claimed",
  "task.started",
  "task.completed",
  "task.failed",
  "task.cancelled",
  "task.reassigned",
]);

/** How often the acked HWM is written at most. */
const HWM_INTERVAL_MS = 1000;

export class NodeHooks {
  readonly subscriptions: Subscriptions;
  #o: NodeHooksOptions;
  #audit: AuditDelivery | null = null;
  #best: BestEffortDelivery | null = null;
  /** Events emitted before start: delivered (and, for audit, written) once it runs. */
  #early: EmitEffect[] | null = [];
  #hwm: HwmStore | null = null;
  #hwmTimer: ReturnType<typeof setInterval> | null = null;
  #stopped = false;
  /** Committed transactions whose events the core is about to emit. */
  #commits = new CommitEvents();

  constructor(o: NodeHooksOptions) {
    this.#o = o;
    this.subscriptions = compileSubscriptions(o.settings.subscribe);
    const m = o.metrics;
    m.declare(
      "boi_hooks_dropped_total",
      "counter",
      "best_effort hook events dropped after their retry, by plugin",
    );
    m.declare(
      "boi_hooks_stalls_total",
      "counter",
      "times the audit queue reached the back-pressure window, by plugin",
    );
    m.declare(
      "boi_hooks_delivered_total",
      "counter",
      "hook events the plugin acked, by plugin",
    );
    m.declare("boi_hooks_hwm", "gauge", "acked HWM stored in etcd, by plugin");
    const plugin = o.settings.name;
    m.collect(() => {
      const s = this.stats();
      m.set("boi_hooks_unacked", s.unacked, { plugin });
      m.set("boi_hooks_hwm", s.hwm_seq, { plugin });
      m.set("boi_hooks_delivered_total", s.delivered, { plugin });
      m.set("boi_hooks_dropped_total", s.dropped, { plugin });
      m.set("boi_hooks_stalls_total", s.stalls, { plugin });
    });
  }

  get tier(): HookTier {
    return this.#o.settings.tier;
  }

  /**
   * Recovers the audit WAL against the stored HWM (reporting a missing or
   * truncated one as `hook.gap.detected`) and starts delivery. Needs etcd
   * (the HWM read); the node calls it once registered.
   */
  async start(): Promise<void> {
    const o = this.#o;
    const plugin = o.settings.name;
    if (o.settings.tier === "best_effort") {
      this.#best = new BestEffortDelivery({
        node_id: o.node_id,
        plugin,
        sink: o.sink,
        log: o.log,
        onDropped: () => {},
      });
      this.#best.start();
    } else {
      this.#hwm = new HwmStore(
        o.client,
        `${o.keys.dir("hooks-hwm")}${plugin}/${o.node_id}`,
        o.log,
      );
      await this.#hwm.read();
      const hwm = this.#hwm.seq;
      const wal = new WalFiles(`${o.data_dir}/hooks-wal`, plugin);
      const found = await wal.load();
      const { state, gaps } = recover(
        hwm,
        found.sealed,
        found.active,
      );
      // What recover() no longer tracks: covered by the HWM and holding no
      // open intent (those resolve below, and a crash meanwhile needs them).
      const kept = new Set(state.sealed.map((i) => i.first));
      for (const seg of found.sealed) {
        if (!kept.has(seg.info.first)) wal.remove(seg.info);
      }
      wal.open(state.active_first);
      // Always logged: the HWM this start used is what its gaps start after.
      o.log.log("info", "hooks: audit WAL recovered", {
        plugin,
        hwm,
        replaying: state.unacked.length,
        ...(state.unacked.length > 0 ? { from_seq: state.unacked[0].seq } : {}),
        to_seq: state.next_seq - 1,
        gaps: gaps.length,
      });
      const size = o.settings.backpressure_window ?? DEFAULT_WINDOW.size;
      const window = { size, resume_at: Math.floor(size * 0.9) };
      this.#audit = new AuditDelivery({
        node_id: o.node_id,
        plugin,
        sink: o.sink,
        wal,
        state,
        window,
        segment_events: o.settings.wal_segment_events ?? 10_000,
        log: o.log,
        onBackpressure: (change, unacked) => {
          o.log.log(change === "stall" ? "warn" : "info", `hooks: ${change}`, {
            plugin,
            unacked,
          });
          o.push({
            type: "hooks_backpressure",
            at: now(),
            stalled: change === "stall",
            plugin,
            unacked,
            window: size,
          });
        },
      });
      for (const g of gaps) {
        o.log.log("error", "hooks: events lost from the audit WAL", {
          plugin,
          ...g,
        });
        if (this.subscriptions.matches("hook.gap.detected")) {
          this.#emitNow({
            kind: "emit",
            event: "hook.gap.detected",
            payload: { plugin, ...g },
          });
        }
      }
      for (const i of [...state.intents.values()]) await this.#resolve(i);
      this.#audit.start();
      this.#hwmTimer = setInterval(() => this.#writeHwm(), HWM_INTERVAL_MS);
    }
    const early = this.#early ?? [];
    this.#early = null;
    for (const e of early) this.emit(e);
  }

  /**
   * One emit effect: filtered by subscription, then queued or written by
   * tier. Never throws into the node's loop: an audit WAL that cannot be
   * written is logged as an error (the event is lost, and said so).
   */
  emit(e: EmitEffect): void {
    if (this.#stopped) return;
    if (this.#early !== null) {
      if (this.subscriptions.matches(e.event)) this.#early.push(e);
      return;
    }
    if (!this.subscriptions.matches(e.event)) return;
    try {
      this.#emitNow(e);
    } catch (err) {
      this.#o.log.log("error", "hooks: audit WAL append failed: event lost", {
        plugin: this.#o.settings.name,
        event: e.event,
        payload: e.payload,
        error: (err as Error).message,
      });
    }
  }

  /**
   * Before a transaction leaves: on the audit tier, if its commit will emit
   * a subscribed event, writes (fsynced) an intent, so a crash between
   * etcd's commit and the event reaching the WAL loses nothing. Returns the
   * token {@linkcode settle} takes.
   */
  prepare(e: TxnEffect): number | null {
    if (!this.#audit || this.#stopped) return null;
    const keys = this.#o.keys;
    const kinds = committedEvents(keys, e, 0).map((ev) => ev.event);
    if (!kinds.some((k) => this.subscriptions.matches(k))) return null;
    const key = keys.task(e.task_id);
    const put = e.success.find((op) => op.op === "put" && op.key === key);
    const mod = e.compare.find((c) => c.key === key && c.target === "mod");
    if (put?.op !== "put" || !mod) return null;
    this.#abandon(this.#commits.take(e.task_id));
    const id = this.#audit.prepare({
      task_id: e.task_id,
      reason: e.reason,
      from_state: e.from_state,
      key,
      value: put.value,
      after_rev: mod.equals,
    }).id;
    this.#commits.expect(
      id,
      kinds.filter((k) => this.subscriptions.matches(k)),
    );
    return id;
  }

  /**
   * A committed transaction whose events have not all come (should not
   * happen): let etcd tell, and emit only what is missing.
   */
  #abandon(stale: PendingCommit | undefined): void {
    const i = stale && this.#audit?.state.intents.get(stale.intent);
    if (i) void this.#resolve(i, stale.written);
  }

  /** Resolves once the intents prepared so far are on disk. */
  intentsDurable(): Promise<void> {
    return this.#audit?.intentsDurable() ?? Promise.resolve();
  }

  /**
   * The answer to a prepared transaction: committed (the core emits its
   * events next, which resolve the intent), failed (nothing to emit), or
   * unknown (etcd did not answer: resolved against etcd in the background).
   */
  settle(token: number | null, outcome: "committed" | "failed" | "unknown") {
    const i = token === null
      ? undefined
      : this.#audit?.state.intents.get(token);
    // After stop the intent stays open in the WAL: the next start resolves it.
    if (!i || this.#stopped) {
      if (token !== null) this.#commits.drop(token);
      return;
    }
    if (outcome === "committed") {
      // A second commit of the task (the flush replayer) ends the first's wait.
      this.#abandon(this.#commits.committed(i.id, i.task_id));
      return;
    }
    this.#commits.drop(i.id);
    if (outcome === "failed") this.#audit!.void(i.id);
    else void this.#resolve(i);
  }

  /**
   * Finds out from etcd whether an intent's transaction committed; emits its
   * events if so, less the kinds this process already wrote (`emitted`) and
   * those the WAL held at start (`written`, wal_intents.ts).
   */
  async #resolve(i: Intent, emitted?: ReadonlySet<string>): Promise<void> {
    const audit = this.#audit!;
    for (let delay = 200;; delay = Math.min(delay * 2, 5000)) {
      if (!audit.state.intents.has(i.id) || this.#stopped) return; // resolved meanwhile, or stopping
      try {
        const r = await intentOutcome(this.#o.client, i);
        if (!audit.state.intents.has(i.id) || this.#stopped) return;
        if (r.committed_at === null) {
          if (r.how.startsWith("unknown")) {
            // Said out loud: if it did commit, its events are lost.
            this.#o.log.log(
              "error",
              "hooks: cannot tell whether a transition committed: its events may be lost",
              {
                plugin: this.#o.settings.name,
                task_id: i.task_id,
                reason: i.reason,
                after_rev: i.after_rev,
                how: r.how,
              },
            );
          }
          audit.void(i.id);
          return;
        }
        const events = missingEvents(this.#o.keys, i, r.committed_at, emitted)
          .filter((ev) => this.subscriptions.matches(ev.event));
        this.#o.log.log("warn", "hooks: events recovered from an intent", {
          plugin: this.#o.settings.name,
          task_id: i.task_id,
          committed_at: r.committed_at,
          how: r.how,
          events: events.map((ev) => ev.event),
        });
        if (events.length === 0) audit.void(i.id);
        events.forEach((ev, n) =>
          audit.emit(
            ev.event,
            Date.now(),
            JSON.stringify(ev.payload),
            n === events.length - 1 ? i.id : undefined,
          )
        );
        return;
      } catch (err) {
        this.#o.log.log("debug", "hooks: intent not resolved yet", {
          task_id: i.task_id,
          error: (err as Error).message,
        });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  #emitNow(e: EmitEffect): void {
    if (!isEventKind(e.event)) {
      this.#o.log.log("error", "hooks: unknown event kind", { event: e.event });
    } else {
      const r = fastSafeParse(
        EVENT_PAYLOADS[e.event],
        EVENT_PAYLOAD_CHECKS[e.event],
        e.payload,
      );
      if (!r.success) {
        this.#o.log.log("error", "hooks: payload does not match its schema", {
          event: e.event,
          issue: r.error.issues[0]?.message,
          path: r.error.issues[0]?.path.join("."),
        });
      }
    }
    const json = JSON.stringify(e.payload);
    const ts = Date.now();
    const tid = e.payload.task_id;
    const intent = TRANSITION_KINDS.has(e.event) && typeof tid === "string"
      ? this.#commits.written(tid, e.event)
      : undefined;
    if (this.#audit) this.#audit.emit(e.event, ts, json, intent);
    else this.#best?.emit(e.event, ts, json);
  }

  stats(): QueueStats {
    const s = this.#audit?.state;
    return {
      node_id: this.#o.node_id,
      plugin: this.#o.settings.name,
      tier: this.#o.settings.tier,
      subscribe: this.subscriptions.patterns,
      last_seq: s ? s.next_seq - 1 : 0,
      acked_seq: s ? s.acked : 0,
      hwm_seq: this.#hwm?.seq ?? 0,
      unacked: s ? unackedCount(s) : (this.#best?.queued ?? 0),
      oldest_unacked_ts: s?.unacked[0]?.ts ?? null,
      stalled: s?.stalled ?? false,
      stalls: s?.stalls ?? 0,
      delivered: this.#audit?.delivered ?? this.#best?.delivered ?? 0,
      dropped: this.#best?.dropped ?? 0,
    };
  }

  /** Stores the acked HWM if it moved; segments it now covers may go. */
  async #writeHwm(): Promise<void> {
    const s = this.#audit?.state;
    if (!s || !this.#hwm) return;
    const seq = s.acked;
    if (await this.#hwm.write(seq)) this.#audit?.hwmStored(seq);
  }

  /** Stops delivery and writes the final HWM. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#hwmTimer !== null) clearInterval(this.#hwmTimer);
    await this.#audit?.stop();
    await this.#best?.stop();
    await this.#hwm?.idle();
    await this.#writeHwm();
  }
}
