/**
 * What both delivery tiers share: the wire form of an event, the wake-up
 * their loops wait on, and the count of calls in flight. Both keep up to
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
 * How long a loop lets events gather before it sends them, by default (ms):
 * at ~100 events/s a node otherwise sent nearly every event alone, one round
 * trip each, and the plugin's CPU per round trip dominated the sink's cost.
 */
export const DEFAULT_BATCH_DELAY_MS = 20;

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

/** Calls in flight, and a wait for none. */
export class InFlight {
  n = 0;
  #idle: PromiseWithResolvers<void> | null = null;

  begin(): void {
    this.n++;
  }
  end(): void {
    if (--this.n === 0 && this.#idle) {
      this.#idle.resolve();
      this.#idle = null;
    }
  }
  /** Resolves once nothing is in flight. */
  idle(): Promise<void> {
    if (this.n === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
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
