/**
 * Sending events to a hooks plugin's `OnEvent` in emission order, up to
 * `max_in_flight` calls at once (in_flight.ts), for each tier of SPEC §8:
 * - {@linkcode AuditDelivery}: WAL first (fsynced), then send; retired only
 *   on the plugin's ack; after a failure, resent from the oldest unacked;
 * - {@linkcode BestEffortDelivery} (best_effort.ts): in memory, one retry,
 *   then dropped.
 * @module
 */
import type { Hooks } from "../plugins/contracts.ts";
import type { WalFiles } from "./wal.ts";
import {
  atMost,
  DEFAULT_BATCH_INTERVAL_MS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_SLOW_ANSWER_MS,
  type HookLog,
  InFlight,
  Pacer,
  toHookEvent,
  Wake,
} from "./in_flight.ts";
import {
  ack,
  ackable,
  assign,
  type AuditState,
  backpressure,
  closeIntent,
  hwmStored,
  type Intent,
  markDurable,
  nextAfter,
  openIntent,
  retirable,
  rotated,
  sealing,
  shouldRotate,
  unackedCount,
  unassign,
  type WalEntry,
  type Window,
} from "./wal_state.ts";

export type { HookLog } from "./in_flight.ts";
export { toHookEvent } from "./in_flight.ts";
export { BestEffortDelivery, type BestEffortOptions } from "./best_effort.ts";

/** Options of {@linkcode AuditDelivery}. */
export interface AuditOptions {
  node_id: string;
  plugin: string;
  sink: Hooks;
  wal: WalFiles;
  /** Recovered at start (wal_recover.recover). */
  state: AuditState;
  window: Window;
  /** Entries per WAL segment before it is sealed. */
  segment_events: number;
  log: HookLog;
  /** Called with "stall" or "resume" as the window fills and drains. */
  onBackpressure(change: "stall" | "resume", unacked: number): void;
  /**
   * Pause after a failed call; it doubles with each failed round in a row
   * (no ack between them), up to `retry_max_ms`: a plugin that is down or
   * struggling is not sent its backlog again twice a second; never more
   * than `retry_max_ms`. @default 500
   */
  retry_ms?: number;
  /** The longest pause between failed rounds. @default 5000 */
  retry_max_ms?: number;
  /** OnEvent calls open at once. @default 64 */
  max_in_flight?: number;
  /** A batch of calls leaves at most this often (ms). @default 100 */
  batch_interval_ms?: number;
  /** An answer slower than this halves the window of calls in flight. @default 500 */
  slow_answer_ms?: number;
}

/** The audit tier: nothing leaves before it is on disk, nothing is retired before it is acked. */
export class AuditDelivery {
  readonly state: AuditState;
  delivered = 0;
  #o: AuditOptions;
  #wake = new Wake();
  #stopped = false;
  #loop: Promise<void> | null = null;
  #lastError = "";
  #pendingSync: Promise<boolean> | null = null;
  #inFlight: InFlight;
  /** Highest seq sent since the last reset (never below `acked`). */
  #sent: number;
  /** Seqs the plugin acked above `acked`, waiting for the ones before them. */
  #okAbove = new Set<number>();
  /** A call failed: send nothing new until every call in flight settled. */
  #failed = false;
  /** Failed rounds since the cumulative ack last moved: the pause's exponent. */
  #failedRounds = 0;
  /** Ends the pause after a failed round at once (stop() does). */
  #endPause: (() => void) | null = null;

  constructor(o: AuditOptions) {
    this.#o = o;
    this.#inFlight = new InFlight(
      o.max_in_flight ?? DEFAULT_MAX_IN_FLIGHT,
      o.slow_answer_ms ?? DEFAULT_SLOW_ANSWER_MS,
    );
    this.state = o.state;
    this.#sent = o.state.acked;
  }

  /** Starts sending from the oldest unacked entry (a replay after a restart). */
  start(): void {
    this.#checkWindow();
    this.#loop ??= this.#run();
  }

  /**
   * Assigns the seq, appends and fsyncs (synchronously: when this returns
   * the event survives a crash), then wakes the sender.
   */
  emit(
    kind: string,
    ts: number,
    payloadJson: string,
    resolves?: number,
  ): WalEntry {
    const s = this.state;
    const entry = assign(s, this.#o.node_id, kind, ts, payloadJson);
    try {
      this.#o.wal.append([entry], resolves, false);
    } catch (err) {
      // Not on disk (ENOSPC, EIO): the seq is given back, or the next fsync
      // would mark it durable and send an event no crash could replay.
      unassign(s, entry);
      throw err;
    }
    if (resolves !== undefined) closeIntent(s, resolves);
    if (shouldRotate(s, this.#o.segment_events)) this.#rotate(entry);
    void this.#sync();
    this.#checkWindow();
    return entry;
  }

  /**
   * Seals the full active segment. The entry is on disk already, so a
   * rotate that fails (a full disk) does not lose it: the segment grows past
   * its size and the next emit tries again; one warning until one succeeds.
   */
  #rotate(entry: WalEntry): void {
    const s = this.state;
    try {
      this.#o.wal.rotate(sealing(s), s.next_seq); // fsyncs the sealed segment
    } catch (err) {
      if (!this.#rotateFailed) {
        this.#o.log.log("error", "hooks: audit WAL rotate failed, will retry", {
          plugin: this.#o.plugin,
          error: (err as Error).message,
        });
      }
      this.#rotateFailed = true;
      return;
    }
    this.#rotateFailed = false;
    rotated(s);
    markDurable(s, entry.seq);
    this.#retire();
  }
  #rotateFailed = false;

  /**
   * Writes an intent before its transaction leaves (see wal_state.Intent);
   * it is durable once {@linkcode intentsDurable} resolves: the intents of
   * one turn of the event loop share one fsync.
   */
  prepare(i: Omit<Intent, "id" | "at_seq">): Intent {
    const intent = openIntent(this.state, i);
    try {
      this.#o.wal.appendIntent(intent);
    } catch (err) {
      closeIntent(this.state, intent.id); // not on disk: its txn must not leave
      throw err;
    }
    void this.#sync();
    return intent;
  }

  /** Resolves once every intent prepared so far is fsynced; rejects if the fsync failed. */
  async intentsDurable(): Promise<void> {
    if (this.#pendingSync && !await this.#pendingSync) {
      throw new Error("hooks WAL: fsync failed");
    }
  }

  /**
   * One fsync for everything appended in this turn of the event loop
   * (events and intents): then the events may be sent and the intents'
   * transactions may leave. Never rejects: false if the fsync failed
   * (nothing is marked durable; the next append tries again).
   */
  #sync(): Promise<boolean> {
    this.#pendingSync ??= Promise.resolve().then(() => {
      this.#pendingSync = null;
      const upto = this.state.next_seq - 1;
      try {
        this.#o.wal.sync();
      } catch (err) {
        this.#o.log.log("error", "hooks: audit WAL fsync failed", {
          plugin: this.#o.plugin,
          error: (err as Error).message,
        });
        return false;
      }
      markDurable(this.state, upto);
      this.#wake.fire();
      return true;
    });
    return this.#pendingSync;
  }

  /** The intent's transaction did not commit: nothing to emit. */
  void(id: number): void {
    if (!this.state.intents.has(id)) return;
    closeIntent(this.state, id);
    this.#o.wal.resolve(id);
    this.#retire();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake.fire();
    this.#endPause?.();
    // An OnEvent in flight may wait for its deadline: do not hold shutdown for it.
    await atMost(Promise.all([this.#loop, this.#inFlight.idle()]), 1000);
    this.#o.wal.close();
  }

  #pause(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const end = () => {
        clearTimeout(t);
        this.#endPause = null;
        resolve();
      };
      const t = setTimeout(end, ms);
      this.#endPause = end;
    });
  }

  #checkWindow(): void {
    const change = backpressure(this.state, this.#o.window);
    if (change) this.#o.onBackpressure(change, unackedCount(this.state));
  }

  /** The HWM reached etcd: segments it covers may go. */
  hwmStored(seq: number): void {
    hwmStored(this.state, seq);
    this.#retire();
  }

  #retire(): void {
    for (const seg of retirable(this.state)) this.#o.wal.remove(seg);
  }

  /**
   * Sends every durable entry after `#sent`, up to `max_in_flight` open, in
   * seq order. After a failure it waits for the calls in flight, pauses, and
   * starts again after `acked`: the oldest unacked comes first again (the
   * plugin dedups what it already had).
   */
  async #run(): Promise<void> {
    const retryMs = this.#o.retry_ms ?? 500;
    const retryMaxMs = this.#o.retry_max_ms ?? 5000;
    const pacer = new Pacer(
      this.#o.batch_interval_ms ?? DEFAULT_BATCH_INTERVAL_MS.audit,
    );
    while (!this.#stopped) {
      if (this.#failed) {
        await this.#inFlight.idle();
        // A plain pause: the settled calls' wake-ups must not cut it short,
        // only stop() (it may be 5 s, and stop waits a second at most).
        await this.#pause(
          Math.min(retryMs * 2 ** this.#failedRounds, retryMaxMs),
        );
        this.#failedRounds = Math.min(this.#failedRounds + 1, 30);
        this.#failed = false;
        this.#sent = this.state.acked;
        this.#okAbove.clear();
        continue;
      }
      if (
        this.#inFlight.full || nextAfter(this.state, this.#sent) === null
      ) {
        await this.#wake.wait(1000);
        continue;
      }
      // Not cut short by an emit: the point is to let more of them gather.
      await pacer.turn();
      // Everything sendable now goes in this turn: one mux batch.
      for (;;) {
        if (this.#stopped || this.#failed || this.#inFlight.full) break;
        const e = nextAfter(this.state, this.#sent);
        if (e === null) break;
        this.#sent = e.seq;
        this.#send(e);
      }
    }
  }

  #send(e: WalEntry): void {
    this.#inFlight.begin();
    const sent = performance.now();
    this.#o.sink.onEvent(toHookEvent(this.#o.node_id, e, "audit")).then(
      (res) => {
        if (res.acked_seq < e.seq) {
          throw new Error(`plugin acked seq ${res.acked_seq}, sent ${e.seq}`);
        }
        this.#inFlight.answered(performance.now() - sent);
        this.#acked(e.seq);
      },
    ).catch((err) => this.#failure(e.seq, err)).finally(() => {
      this.#inFlight.end();
      this.#wake.fire();
    });
  }

  /**
   * The plugin acked `seq` (this very call: a larger acked_seq is not
   * trusted beyond what was sent). The cumulative ack moves over the
   * contiguous run of acked seqs only, so an answer arriving before an
   * earlier one's, or after an earlier one failed, never retires the
   * earlier one.
   */
  #acked(seq: number): void {
    const s = this.state;
    if (seq <= s.acked) return;
    this.#okAbove.add(seq);
    const upto = ackable(s, this.#okAbove);
    if (upto === s.acked) return;
    for (const q of this.#okAbove) if (q <= upto) this.#okAbove.delete(q);
    this.delivered += ack(s, upto);
    this.#lastError = "";
    this.#failedRounds = 0;
    this.#retire();
    this.#checkWindow();
  }

  #failure(seq: number, err: unknown): void {
    this.#failed = true;
    this.#inFlight.failed();
    const msg = (err as Error).message.split("\n")[0];
    if (msg !== this.#lastError) {
      this.#o.log.log("warn", "hooks: delivery failed, will retry", {
        plugin: this.#o.plugin,
        seq,
        error: msg,
      });
      this.#lastError = msg;
    }
  }
}
