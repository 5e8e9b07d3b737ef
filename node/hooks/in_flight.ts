/**
 * What both delivery tiers share: the wire form of an event, the wake-up
 * their loops wait on, and the window of calls in flight. Both keep up to
 * `max_in_flight` OnEvent calls open, sent in emission order: calls sent in
 * one turn of the event loop travel as one mux batch, and the plugin answers
 * them as one, so a round trip is paid per batch rather than per event.
 * @module
 */
import type { HookEvent } from "../plugins/contracts.ts";
import type { WalEntry } from "./wal_state.ts";

/** Log sink (node/shell/log.ts's Logger fits). */
export interface HookLog {
  log(
    level: "debug" | "info" | "warn" | "error",
    msg: string,
    fields?: Record<string, unknown>,
  ): void;
}

/** OnEvent calls open at once per plugin, by default. */
export const DEFAULT_MAX_IN_FLIGHT = 64;

/**
 * A delivery loop sends a batch at most this often by default (ms); what is
 * emitted meanwhile travels together. Measured: a round trip cost the hooks
 * plugin ~0.3 ms of CPU back to back and ~1.5 ms when sparse, whatever it
 * carried, and at ~100 events/s a node otherwise sent nearly every event
 * alone. best_effort waits longer (latency is all it costs there); audit
 * keeps acks prompt for the back-pressure window.
 */
export const DEFAULT_BATCH_INTERVAL_MS = { audit: 100, best_effort: 250 };

/** The wire form of one event. */
export function toHookEvent(
  nodeId: string,
  e: WalEntry,
  tier: HookEvent["tier"],
): HookEvent {
  return {
    seq: e.seq,
    emitter_node_id: nodeId,
    kind: e.kind,
    ts: e.ts,
    payload_json: e.payload_json,
    dedup_key: e.dedup_key,
    tier,
  };
}

/**
 * A wake-up a delivery loop waits on. A fire() before wait() is kept, so
 * a loop that checks its state and then waits misses nothing.
 */
export class Wake {
  #w = Promise.withResolvers<void>();
  fire(): void {
    this.#w.resolve();
  }
  async wait(ms: number): Promise<void> {
    let t: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#w.promise,
      new Promise<void>((r) => t = setTimeout(r, ms)),
    ]);
    clearTimeout(t);
    this.#w = Promise.withResolvers<void>();
  }
}

/**
 * An answer slower than this (ms) halves the window, by default: the plugin
 * serves events one after the other, so a deep pipeline into a slow sink
 * would only make the later calls miss their deadline (and be resent).
 */
export const DEFAULT_SLOW_ANSWER_MS = 500;

/**
 * Calls in flight, and how many may be: the window starts at 1, grows by
 * one per quick answer up to `max`, halves after a slow one, and is back
 * at 1 after a failure. A fast sink soon has `max` open; a slow one is served
 * one call at a time, as before pipelining.
 */
export class InFlight {
  n = 0;
  window = 1;
  #cutAt = -Infinity;
  #idle: PromiseWithResolvers<void> | null = null;

  constructor(
    readonly max: number,
    readonly slowMs: number = DEFAULT_SLOW_ANSWER_MS,
  ) {}

  /** No call may be added now. */
  get full(): boolean {
    return this.n >= this.window;
  }

  begin(): void {
    this.n++;
  }
  end(): void {
    if (--this.n === 0 && this.#idle) {
      this.#idle.resolve();
      this.#idle = null;
    }
  }
  /**
   * A call was answered `ms` after it was sent. A slow batch halves the
   * window once, not once per call in it: at most one cut per `slowMs`.
   */
  answered(ms: number): void {
    if (ms <= this.slowMs) {
      this.window = Math.min(this.max, this.window + 1);
      return;
    }
    const now = performance.now();
    if (now - this.#cutAt < this.slowMs) return;
    this.#cutAt = now;
    this.window = Math.max(1, Math.floor(this.window / 2));
  }
  failed(): void {
    this.window = 1;
  }
  /** Resolves once nothing is in flight. */
  idle(): Promise<void> {
    if (this.n === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }
}

/**
 * At most one batch per `ms`: the first event after a quiet spell leaves at
 * once, the ones that follow within `ms` gather for the next batch.
 */
export class Pacer {
  #last = -Infinity;
  #cut: (() => void) | null = null;
  constructor(readonly ms: number) {}
  /** Resolves when the next batch may leave (or {@linkcode hurry} was called). */
  async turn(): Promise<void> {
    const wait = this.#last + this.ms - performance.now();
    if (wait > 0) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        this.#cut = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#cut = null;
    }
    this.#last = performance.now();
  }
  /** Ends the current wait now (shutdown flushes). */
  hurry(): void {
    this.#cut?.();
  }
}

/** A plain pause. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for `p`, at most `ms` (the timer is cleared either way). */
export async function atMost(p: Promise<unknown>, ms: number): Promise<void> {
  let t: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise<void>((r) => t = setTimeout(r, ms))]);
  clearTimeout(t);
}
