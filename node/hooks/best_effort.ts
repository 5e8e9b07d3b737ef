/**
 * The best_effort tier (SPEC §8): in memory, never on disk, never blocking
 * work. Events leave in emission order, up to `max_in_flight` at once (see
 * in_flight.ts); a failed one is sent once more after `retry_ms`, then
 * dropped and counted. While the sink is healthy it sees emission order; an
 * event that only got through on its retry lands after the ones sent
 * meanwhile (the audit tier keeps order across failures, this one does not
 * wait for it).
 * @module
 */
import type { Hooks } from "../plugins/contracts.ts";
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
import { dedupKey, type WalEntry } from "./wal_state.ts";

/** Options of {@linkcode BestEffortDelivery}. */
export interface BestEffortOptions {
  node_id: string;
  plugin: string;
  sink: Hooks;
  log: HookLog;
  /** Called per event dropped (full queue or failed twice). */
  onDropped(): void;
  /** Events held in memory at most; beyond, new ones are dropped. @default 10000 */
  max_queue?: number;
  /** Pause before the one retry. @default 1000 */
  retry_ms?: number;
  /** OnEvent calls open at once (and retries waiting, apart). @default 64 */
  max_in_flight?: number;
  /** A batch of calls leaves at most this often (ms). @default 250 */
  batch_interval_ms?: number;
  /** An answer slower than this halves the window of calls in flight. @default 500 */
  slow_answer_ms?: number;
}

/** The best_effort tier; see the module doc. */
export class BestEffortDelivery {
  delivered = 0;
  dropped = 0;
  #o: BestEffortOptions;
  #queue: WalEntry[] = [];
  #seq = 0;
  #wake = new Wake();
  #inFlight: InFlight;
  /** Failed once, waiting for their retry: timer → the event's seq. */
  #retries = new Map<ReturnType<typeof setTimeout>, number>();
  #stopped = false;
  /** stop() was called: what is queued leaves now, nothing is retried. */
  #flushing = false;
  #pacer: Pacer;
  #loop: Promise<void> | null = null;

  constructor(o: BestEffortOptions) {
    this.#o = o;
    this.#pacer = new Pacer(
      o.batch_interval_ms ?? DEFAULT_BATCH_INTERVAL_MS.best_effort,
    );
    this.#inFlight = new InFlight(
      o.max_in_flight ?? DEFAULT_MAX_IN_FLIGHT,
      o.slow_answer_ms ?? DEFAULT_SLOW_ANSWER_MS,
    );
  }

  /** Events waiting to be sent (not those in flight). */
  get queued(): number {
    return this.#queue.length;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  emit(kind: string, ts: number, payloadJson: string): void {
    const seq = ++this.#seq;
    if (this.#queue.length >= (this.#o.max_queue ?? 10_000)) {
      this.#drop(seq, "queue full");
      return;
    }
    this.#queue.push({
      seq,
      kind,
      ts,
      payload_json: payloadJson,
      dedup_key: dedupKey(this.#o.node_id, seq, kind, ts),
    });
    this.#wake.fire();
  }

  /**
   * Sends what is still queued at once (no batching pause, no retries) and
   * waits for it, at most a second; then stops. What never got out (a retry
   * that was waiting, the queue left at the deadline) is dropped and counted.
   */
  async stop(): Promise<void> {
    this.#flushing = true;
    this.#wake.fire();
    this.#pacer.hurry();
    for (const [t, seq] of this.#retries) {
      clearTimeout(t);
      this.#drop(seq, "stopping before its retry");
    }
    this.#retries.clear();
    await atMost(
      Promise.all([this.#loop, this.#inFlight.idle()]),
      1000,
    );
    this.#stopped = true;
    for (const e of this.#queue.splice(0)) {
      this.#drop(e.seq, "stopping: not sent within a second");
    }
    this.#wake.fire();
  }

  #drop(seq: number, why: string): void {
    this.dropped++;
    this.#o.onDropped();
    this.#o.log.log("debug", "hooks: event dropped", {
      plugin: this.#o.plugin,
      seq,
      reason: why,
    });
  }

  /** Nothing new may leave: the window is full, or as many retries wait. */
  #full(): boolean {
    return this.#inFlight.full || this.#retries.size >= this.#inFlight.max;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (this.#flushing && this.#queue.length === 0) break;
      if (this.#queue.length === 0 || this.#full()) {
        await this.#wake.wait(1000);
        continue;
      }
      // Not cut short by an emit: the point is to let more of them gather.
      if (!this.#flushing) await this.#pacer.turn();
      // Everything queued now goes in this turn: one mux batch.
      while (!this.#stopped && this.#queue.length > 0 && !this.#full()) {
        this.#send(this.#queue.shift()!, false);
      }
    }
  }

  /** One try; a first failure waits `retry_ms` for its retry, outside the window. */
  #send(e: WalEntry, retried: boolean): void {
    this.#inFlight.begin();
    const ev = toHookEvent(this.#o.node_id, e, "best_effort");
    const sent = performance.now();
    this.#o.sink.onEvent(ev).then(
      () => {
        this.delivered++;
        this.#inFlight.answered(performance.now() - sent);
      },
      (err) => {
        this.#inFlight.failed();
        if (retried || this.#flushing) {
          this.#drop(e.seq, (err as Error).message.split("\n")[0]);
          return;
        }
        const t = setTimeout(() => {
          this.#retries.delete(t);
          this.#send(e, true);
        }, this.#o.retry_ms ?? 1000);
        this.#retries.set(t, e.seq);
      },
    ).finally(() => {
      this.#inFlight.end();
      this.#wake.fire();
    });
  }
}
