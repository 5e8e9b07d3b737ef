/** What every part of one simulated schedule shares: clock, randomness, etcd, faults, trace. */
import { Keys } from "../keys.ts";
import type { FlushEntry } from "../schema.ts";
import type { HooksDisk } from "./hooks_model.ts";
import { EtcdModel } from "./etcd_model.ts";
import { Rng } from "./rng.ts";
import { Scheduler } from "./scheduler.ts";

/** Shape of one schedule. */
export interface SimParams {
  /** @default 3 */
  nodes: number;
  /** @default 50 */
  tasks: number;
  /** @default 2000 */
  lease_ttl_ms: number;
  /** The node's sweep. @default 100 */
  tick_ms: number;
  /** Faults are injected only before this virtual time. @default 8000 */
  fault_window_ms: number;
  /** After the faults, every task must be terminal by then. @default 90000 */
  deadline_ms: number;
}

export const DEFAULT_PARAMS: SimParams = {
  nodes: 3,
  tasks: 50,
  lease_ttl_ms: 2000,
  tick_ms: 100,
  fault_window_ms: 8000,
  deadline_ms: 90_000,
};

/** Fault knobs a schedule draws once; node-level faults are scheduled events. */
export interface FaultKnobs {
  /** A committed transaction's reply is lost (the client sees an error). */
  lost_reply: number;
  /** A committed transaction is retried on another endpoint (its compare fails). */
  endpoint_retry: number;
  /** A watch response is delivered a second time. */
  dup_watch: number;
  /** Largest watch delivery delay, ms. */
  watch_delay_max: number;
  /** Nodes run an audit hooks plugin (half the schedules: both setups get checked). */
  audit_hooks: boolean;
  /** Nodes run a router plugin, a faulty one (router_model.ts). */
  routers: boolean;
  /** A Kill call fails (the pool never gets it): the node hears `kill_failed`. */
  lost_kill: number;
  /** Nodes retire finished specs this long after their end (retire.ts); 0: never. */
  spec_retention_ms: number;
  /**
   * A crashed dispatch's envelopes (spec "lost", never a record) sit in etcd
   * from the start: no node may claim or write them, and with retention on
   * they are deleted once the orphan grace (1 s here) has passed.
   */
  orphans: boolean;
  /**
   * A lost reply (`lost_reply`) reads, half the time, as an error that is not
   * an outage (grpc CANCELLED, INTERNAL, a reply that does not decode): the
   * result is not parked, and the watch may show the commit first.
   */
  error_replies: boolean;
}

/** A broken invariant: the schedule stops, and the seed and trace are printed. */
export class Violation extends Error {}

export class World {
  readonly sched = new Scheduler();
  readonly etcd: EtcdModel;
  readonly keys = new Keys("/boi/");
  readonly rng: Rng;
  /** Nodes cut off from etcd (requests fail, the watch stalls). */
  readonly partitioned = new Set<string>();
  /** Node id → virtual time until which its workspace Prepare takes 3 s. */
  readonly slowPrepareUntil = new Map<string, number>();
  /** The pending-flush file of each node id: it survives the node's crash. */
  readonly flushFiles = new Map<string, FlushEntry[]>();
  /** Each node id's hooks WAL, stored HWM and sink: they survive the node's crash. */
  readonly hooksDisks = new Map<string, HooksDisk>();
  /** The last trace lines, printed with a violation. */
  readonly #trace: string[] = [];
  #traceAt = 0;
  tracing = true;

  constructor(
    readonly seed: number,
    readonly params: SimParams,
    readonly knobs: FaultKnobs,
  ) {
    this.rng = new Rng(seed);
    this.etcd = new EtcdModel(this.sched);
  }

  /** Whether `node` can reach etcd now. */
  reachable(node: string): boolean {
    return this.etcd.up && !this.partitioned.has(node);
  }

  /** A small network latency, ms. */
  lat(): number {
    return 0.1 + this.rng.next() * 1.5;
  }

  trace(line: string): void {
    if (!this.tracing) return;
    const entry = `${this.sched.now.toFixed(1).padStart(8)} ${line}`;
    if (this.#trace.length < 60) this.#trace.push(entry);
    else this.#trace[this.#traceAt++ % 60] = entry;
  }

  traceLines(): string[] {
    const n = this.#trace.length;
    if (n < 60) return [...this.#trace];
    const at = this.#traceAt % 60;
    return [...this.#trace.slice(at), ...this.#trace.slice(0, at)];
  }

  fail(msg: string): never {
    throw new Violation(msg);
  }
}
