/**
 * etcd reachability as the node sees it (SPEC §6 degraded mode): one failed
 * call on a dead member of three is not an outage; etcd is unreachable only
 * once nothing has succeeded for a grace period. Feeds /healthz, the
 * `boi_etcd_*` metrics, the `etcd_unreachable since=…` lines and the cache age.
 */
import { unreachableReason } from "../etcd_errors.ts";
import type { EmitEffect } from "../core/mod.ts";
import { emit } from "../core/hook_events.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { now } from "./clock.ts";

/** A change of etcd reachability, as {@linkcode EtcdHealth} reports it. */
export type EtcdChange = { up: true; down_ms: number } | {
  up: false;
  since: number;
  error: string;
};

/** What a reachability change tells the hooks (SPEC §6 degraded mode). */
export function partitionEvent(node_id: string, ch: EtcdChange): EmitEffect {
  return ch.up
    ? emit("cluster.partition_healed", { node_id, down_ms: ch.down_ms })
    : emit("cluster.partition_detected", {
      node_id,
      since: ch.since,
      error: ch.error,
    });
}

/**
 * How long without a success (and then a failure) is an outage: one lease
 * TTL, at least 1 s. An idle node's only calls are its keepalives: a round
 * every TTL/3 that may last TTL/3 (lease.ts), so one failed round is told up
 * to 2/3 TTL after the last success, later on a loaded machine. Half a TTL
 * made every failed round an outage: a round whose tries all met the dead
 * member of three, or one keepalive slower than its 300 ms under load, put
 * /healthz at 503 until the next round (member_loss_test, 7 of 78 checks).
 * A whole TTL tolerates one failed round with a third of a TTL to spare;
 * past it etcd may have expired the lease, so the node cannot vouch for it.
 */
export function outageGraceMs(leaseTtlS: number): number {
  return Math.max(1000, leaseTtlS * 1000);
}

export class EtcdHealth {
  up = true;
  downSince: number | null = null;
  /** When the node last heard from etcd (watch event, keepalive, write): its cache age. */
  lastContact = now();

  constructor(
    readonly log: Logger,
    readonly metrics: Metrics,
    /** No success for this long (and a failure) is an outage. {@linkcode outageGraceMs} */
    readonly graceMs: number,
    /** Called once etcd answers again (replay the pending flush). */
    readonly onUp: () => void,
    /** Every change, for `cluster.partition_detected` / `cluster.partition_healed`. */
    readonly onChange: (c: EtcdChange) => void = () => {},
  ) {}

  /** Records a success (`up`) or an unreachable failure. */
  mark(up: boolean, err?: unknown): void {
    if (up) this.lastContact = now();
    if (!up && now() - this.lastContact < this.graceMs) return;
    this.metrics.set("boi_etcd_up", up ? 1 : 0);
    if (up === this.up) return;
    this.up = up;
    if (up) {
      const down_ms = now() - (this.downSince ?? now());
      this.log.info("etcd reachable again", { down_ms });
      this.downSince = null;
      queueMicrotask(() => this.onUp());
      this.onChange({ up: true, down_ms });
    } else {
      this.downSince = now();
      const error = unreachableReason(err);
      this.log.warn("etcd_unreachable", { since: this.downSince, error });
      this.onChange({ up: false, since: this.downSince, error });
    }
  }

  /** The periodic (5 s) reminder while etcd is unreachable. */
  report(): void {
    if (!this.up) this.log.warn(`etcd_unreachable since=${this.downSince}`);
  }
}
