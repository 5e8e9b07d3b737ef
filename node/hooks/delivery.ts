/**
 * Sending events to a hooks plugin's `OnEvent`, one call at a time in
 * emission order, for each tier of SPEC §8:
 * - {@linkcode AuditDelivery}: WAL first (fsynced), then send; retired only
 *   on the plugin's ack; retried forever from the oldest unacked;
 * - {@linkcode BestEffortDelivery}: in memory, one retry, then dropped.
 * @module
 */
import type { HookEvent, Hooks } from "../plugins/contracts.ts";
import type { WalFiles } from "./wal.ts";
import {
  ack,
  assign,
  type AuditState,
  backpressure,
  closeIntent,
  dedupKey,
  hwmStored,
  type Intent,
  markDurable,
  nextToSend,
  openIntent,
  retirable,
  rotated,
  shouldRotate,
  unackedCount,
  type WalEntry,
  type Window,
} from "./wal_state.ts";

/** Log sink (node/shell/log.ts's Logger fits). */
export interface HookLog {
  log(
    level: "debug" | "info" | "warn" | "error",
    msg: string,
    fields?: Record<string, unknown>,
  ): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A wake-up the delivery loop waits on when it has nothing to send. */
class Wake {
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

/** Options of {@linkcode AuditDelivery}. */
export interface AuditOptions {
  node_id: string;
  plugin: string;
  sink: Hooks;
  wal: WalFiles;
  /** Recovered at start (wal_state.recover). */
  state: AuditState;
  window: Window;
  /** Entries per WAL segment before it is sealed. */
  segment_events: number;
  log: HookLog;
  /** Called with "stall" or "resume" as the window fills and drains. */
  onBackpressure(change: "stall" | "resume", unacked: number): void;
  /** Pause after a failed call. @default 500 */
  retry_ms?: number;
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

  constructor(o: AuditOptions) {
    this.#o = o;
    this.state = o.state;
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
    this.#o.wal.append([entry], resolves, false);
    if (resolves !== undefined) closeIntent(s, resolves);
    if (shouldRotate(s, this.#o.segment_events)) {
      const seg = rotated(s);
      this.#o.wal.rotate(seg, s.next_seq); // fsyncs the sealed segment
      markDurable(s, entry.seq);
      this.#retire();
    }
    void this.#sync();
    this.#checkWindow();
    return entry;
  }

  /**
   * Writes an intent before its transaction leaves (see wal_state.Intent);
   * it is durable once {@linkcode intentsDurable} resolves: the intents of
   * one turn of the event loop share one fsync.
   */
  prepare(i: Omit<Intent, "id" | "at_seq">): Intent {
    const intent = openIntent(this.state, i);
    this.#o.wal.appendIntent(intent);
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
    // An OnEvent in flight may wait for its deadline: do not hold shutdown for it.
    if (this.#loop) await Promise.race([this.#loop, sleep(1000)]);
    this.#o.wal.close();
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

  async #run(): Promise<void> {
    const retryMs = this.#o.retry_ms ?? 500;
    while (!this.#stopped) {
      const e = nextToSend(this.state);
      if (e === null) {
        await this.#wake.wait(1000);
        continue;
      }
      try {
        const res = await this.#o.sink.onEvent(toHookEvent(
          this.#o.node_id,
          e,
          "audit",
        ));
        if (res.acked_seq < e.seq) {
          throw new Error(`plugin acked seq ${res.acked_seq}, sent ${e.seq}`);
        }
        // Only what was sent can be acked, whatever the plugin says.
        ack(this.state, e.seq);
        this.delivered++;
        this.#lastError = "";
        this.#retire();
        this.#checkWindow();
      } catch (err) {
        const msg = (err as Error).message.split("\n")[0];
        if (msg !== this.#lastError) {
          this.#o.log.log("warn", "hooks: delivery failed, will retry", {
            plugin: this.#o.plugin,
            seq: e.seq,
            error: msg,
          });
          this.#lastError = msg;
        }
        await this.#wake.wait(retryMs);
      }
    }
  }
}

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
}

/** The best_effort tier: never blocks, never touches disk; a failed event gets one retry. */
export class BestEffortDelivery {
  delivered = 0;
  dropped = 0;
  #o: BestEffortOptions;
  #queue: WalEntry[] = [];
  #seq = 0;
  #wake = new Wake();
  #stopped = false;
  #loop: Promise<void> | null = null;

  constructor(o: BestEffortOptions) {
    this.#o = o;
  }

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

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake.fire();
    if (this.#loop) await Promise.race([this.#loop, sleep(1000)]);
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

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const e = this.#queue.shift();
      if (e === undefined) {
        await this.#wake.wait(1000);
        continue;
      }
      const ev = toHookEvent(this.#o.node_id, e, "best_effort");
      try {
        await this.#o.sink.onEvent(ev);
        this.delivered++;
      } catch {
        await sleep(this.#o.retry_ms ?? 1000);
        try {
          await this.#o.sink.onEvent(ev);
          this.delivered++;
        } catch (err) {
          this.#drop(e.seq, (err as Error).message.split("\n")[0]);
        }
      }
    }
  }
}
