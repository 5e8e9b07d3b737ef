/**
 * The audit hooks tier in the simulator (SPEC §8), driven through the real
 * bookkeeping (`node/hooks/wal_state.ts`): each event the core emits gets a
 * seq, is fsynced (after a latency) before it may be sent, goes to a model
 * sink that dedups by seq, and is retired when acked; the WAL and the stored
 * HWM survive a node crash, the sink survives everything. Back-pressure
 * reaches the core as the real `hooks_backpressure` event. Checked: no send
 * before durable, `auditViolation` after every step, and at the end every
 * seq of every node in the sink with no gap.
 */
import {
  ack,
  assign,
  type AuditState,
  auditViolation,
  backpressure,
  markDurable,
  nextToSend,
  type WalEntry,
  type Window,
} from "../hooks/wal_state.ts";
import { recover } from "../hooks/wal_recover.ts";
import type { SimNode } from "./sim_node.ts";

/** What outlives a node's incarnation: its WAL file and HWM, and the sink. */
export interface HooksDisk {
  wal: WalEntry[];
  hwm: number;
  /** seq → dedup_key as the sink holds them (after dedup). */
  sink: Map<number, string>;
}

/** Small, so a slow sink stalls the node within a schedule. */
const WINDOW: Window = { size: 20, resume_at: 18 };

export class HooksModel {
  readonly state: AuditState;
  #sending = false;
  /** Bumped when the plugin crashes: answers of an older incarnation are lost. */
  #plugin = 0;
  pluginUp = true;
  /** When the last append's fsync completes (virtual ms). */
  #fsyncAt = 0;
  /** Extra ack latency while a slow-sink fault is on, ms. */
  slowAckMs = 0;

  constructor(readonly n: SimNode, readonly disk: HooksDisk) {
    const found = {
      info: { first: disk.hwm + 1, last: null },
      entries: disk.wal.filter((e) => e.seq > disk.hwm),
      corrupt: 0,
    };
    const { state, gaps } = recover(disk.hwm, [], found);
    if (gaps.length > 0) {
      n.w.fail(
        `${n.id} hooks WAL recovered with gaps: ${JSON.stringify(gaps)}`,
      );
    }
    this.state = state;
  }

  /** After a restart: send what the previous incarnation left unacked. */
  start(): void {
    this.#pump();
    this.#pressure();
  }

  emit(kind: string, payload: Record<string, unknown>): void {
    if (!this.n.w.knobs.audit_hooks) return;
    const e = assign(
      this.state,
      this.n.id,
      kind,
      this.n.now,
      JSON.stringify(payload),
    );
    // Appended in seq order and fsynced: only then may it be sent. Appends
    // are sequential, so durability is in seq order too.
    const now = this.n.w.sched.now;
    this.#fsyncAt = Math.max(this.#fsyncAt, now + 0.2 + this.n.w.rng.next());
    this.n.later(this.#fsyncAt - now, () => {
      this.disk.wal.push(e);
      markDurable(this.state, e.seq);
      this.#check();
      this.#pump();
    });
    this.#pressure();
  }

  crashPlugin(downMs: number): void {
    this.pluginUp = false;
    this.#plugin++;
    this.#sending = false;
    this.n.later(downMs, () => {
      this.pluginUp = true;
      this.#pump();
    });
  }

  /** Every seq this incarnation assigned is in the sink: nothing lost, no gap. */
  caughtUp(): boolean {
    return this.state.acked === this.state.next_seq - 1;
  }

  #pump(): void {
    if (this.#sending || !this.pluginUp) return;
    const e = nextToSend(this.state);
    if (!e) return;
    if (e.seq > this.state.durable) {
      this.n.w.fail(`${this.n.id} hooks: seq ${e.seq} sent before durable`);
    }
    this.#sending = true;
    const inc = this.#plugin;
    const w = this.n.w;
    this.n.later(w.lat(), () => {
      if (inc !== this.#plugin) return; // the plugin died with it
      const had = this.disk.sink.get(e.seq);
      if (had !== undefined && had !== e.dedup_key) {
        w.fail(
          `${this.n.id} hooks: seq ${e.seq} delivered as two different events`,
        );
      }
      this.disk.sink.set(e.seq, e.dedup_key);
      this.n.later(w.lat() + this.slowAckMs, () => {
        if (inc !== this.#plugin) return;
        this.#sending = false;
        ack(this.state, e.seq);
        // The HWM is CAS-written after the ack; segments go only once it is stored.
        this.state.hwm = this.disk.hwm = this.state.acked;
        this.disk.wal = this.disk.wal.filter((x) => x.seq > this.disk.hwm);
        this.#check();
        this.#pressure();
        this.#pump();
      });
    });
  }

  #pressure(): void {
    const r = backpressure(this.state, WINDOW);
    if (r === null) return;
    this.n.push({
      type: "hooks_backpressure",
      at: this.n.now,
      stalled: r === "stall",
      plugin: "sink",
      unacked: this.state.unacked.length,
      window: WINDOW.size,
    });
  }

  #check(): void {
    const v = auditViolation(this.state);
    if (v) this.n.w.fail(`${this.n.id} hooks: ${v}`);
  }
}
