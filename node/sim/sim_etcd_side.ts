/**
 * The simulated node's etcd client side: transactions with latencies, lost
 * replies and endpoint retries (failed compares read back like the real
 * shell's failure branch), the pending flush and its replay (decided by
 * core/flush_replay.ts), and the caps record through the real CAS publisher.
 */
import type { TxnEffect } from "../core/mod.ts";
import type { KeyChange } from "../core/events.ts";
import { capsRecord } from "../core/caps_record.ts";
import { decideReplay } from "../core/flush_replay.ts";
import { txnKeys } from "../core/txns.ts";
import { type CasPort, CasPublisher } from "../shell/cas_publisher.ts";
import { ModelError } from "./etcd_model.ts";
import type { SimNode } from "./sim_node.ts";

export class SimEtcdSide {
  readonly capsPub: CasPublisher;
  #replaying = false;

  constructor(readonly n: SimNode) {
    this.capsPub = new CasPublisher(this.#casPort(), n.w.keys.caps(n.id));
  }

  txn(e: TxnEffect): void {
    this.n.check.onTxnSent(this.n, e);
    if (!this.n.w.reachable(this.n.id)) {
      return this.n.later(this.unreachableMs(), () => this.#txnFailed(e, true));
    }
    this.n.later(this.n.w.lat(), () => {
      if (!this.n.w.reachable(this.n.id)) return this.#txnFailed(e, true);
      let ok: boolean;
      let reads: KeyChange[] | undefined;
      const t = { ...e, read_on_failure: txnKeys(e) };
      try {
        const [r] = this.n.w.etcd.txn(`${this.n.id}:${e.reason}`, [t]);
        ok = r.ok;
        if (!ok) reads = this.#reads(t.read_on_failure, r.reads);
      } catch (err) {
        if (!(err instanceof ModelError)) throw err;
        return this.n.later(this.n.w.lat(), () => this.#txnFailed(e, false));
      }
      const revision = this.n.w.etcd.revision;
      if (ok && this.n.w.rng.chance(this.n.w.knobs.lost_reply)) {
        // Drawn only with the knob on, so other schedules keep their draws.
        const outage = !this.n.w.knobs.error_replies ||
          this.n.w.rng.chance(0.5);
        this.n.w.trace(
          `${this.n.id} reply lost${
            outage ? "" : " as an error"
          }: ${e.reason} ${e.task_id}`,
        );
        return this.n.later(this.n.w.lat(), () => this.#txnFailed(e, outage));
      }
      if (ok && this.n.w.rng.chance(this.n.w.knobs.endpoint_retry)) {
        // The client retried the committed request on another member.
        this.n.w.trace(`${this.n.id} retried on another endpoint: ${e.reason}`);
        const [r] = this.n.w.etcd.txn(`${this.n.id}:${e.reason}`, [t]);
        ok = r.ok;
        if (!ok) reads = this.#reads(t.read_on_failure, r.reads);
      }
      // A failed compare's header revision is when its reads were taken,
      // not when the answer arrives (the watch may be past it by then).
      const readAt = this.n.w.etcd.revision;
      this.n.later(this.n.w.lat(), () => {
        // The answer arrives: from here the node knows the compare failed.
        if (!ok) this.n.check.onTxnConflict(this.n, e);
        this.n.push({
          type: "txn_done",
          at: this.n.now,
          effect: e,
          ok,
          revision: ok ? revision : readAt,
          error: null,
          reads,
        });
      });
    });
  }

  /** Failure-branch reads as watch changes; an absent key is a delete at the current revision. */
  #reads(keys: string[], got: (KeyChange | null)[]): KeyChange[] {
    const rev = this.n.w.etcd.revision;
    return keys.map((key, i) => got[i] ?? { key, revision: rev, kv: null });
  }

  unreachableMs(): number {
    // Connection refused answers at once; a black-holed partition waits for the deadline.
    return this.n.w.etcd.up ? 1000 : 5;
  }

  #txnFailed(e: TxnEffect, unreachable: boolean): void {
    if (e.reason === "finish" && unreachable) this.#park(e);
    this.n.later(200, () =>
      this.n.push({
        type: "txn_done",
        at: this.n.now,
        effect: e,
        ok: false,
        revision: 0,
        error: unreachable ? "unavailable" : "refused",
      }));
  }

  #park(e: TxnEffect): void {
    const w = this.n.view.workers.get(e.task_id);
    const fence = e.compare.find((c) => c.target === "create")?.equals;
    if (!w || !w.result || fence === undefined || w.fence !== fence) return;
    this.n.flush.push({
      task_id: w.task_id,
      fence,
      attempt: w.attempt,
      code: w.result.code,
      signal: w.result.signal,
      error: w.result.error,
      lost: w.result.lost,
      started_at: w.started_at,
      finished_at: w.result.finished_at,
      parked_at: this.n.now,
    });
    this.n.push({
      type: "result_flushed",
      at: this.n.now,
      task_id: w.task_id,
      fence,
    });
  }

  replayFlush(): void {
    if (this.#replaying || this.n.flush.length === 0) return;
    if (!this.n.w.reachable(this.n.id)) return;
    this.#replaying = true;
    this.n.later(this.n.w.lat(), () => {
      this.#replaying = false;
      for (const entry of [...this.n.flush]) {
        if (!this.n.w.reachable(this.n.id)) return;
        const step = decideReplay(
          this.n.view.config,
          this.n.w.keys,
          entry,
          this.n.w.etcd.read(this.n.w.keys.claim(entry.task_id)),
          this.n.w.etcd.read(this.n.w.keys.task(entry.task_id)),
        );
        if (step.kind === "commit") {
          const [r] = this.n.w.etcd.txn(`${this.n.id}:replay`, [step]);
          if (!r.ok) return; // changed under us: the next round re-reads
        }
        const files = this.n.flush;
        files.splice(files.indexOf(entry), 1);
        this.n.push({
          type: "flush_resolved",
          at: this.n.now,
          task_id: entry.task_id,
        });
      }
    });
  }

  publishCaps(): void {
    const lease = this.n.view.lease_id;
    if (lease === null) return;
    const caps = capsRecord(this.n.view, this.n.now, this.n.flush.length);
    this.capsPub.publish(JSON.stringify(caps), lease);
  }

  /** The etcd model behind the real CAS publisher: latencies, lost replies, unreachable. */
  #casPort(): CasPort {
    return {
      put: (key, value, lease, expect, done) => {
        if (!this.n.w.reachable(this.n.id)) {
          return this.n.later(
            this.unreachableMs(),
            () => done({ kind: "error", error: "unreachable" }),
          );
        }
        this.n.later(this.n.w.lat(), () => {
          if (!this.n.w.reachable(this.n.id)) {
            return done({ kind: "error", error: "unreachable" });
          }
          let r;
          try {
            [r] = this.n.w.etcd.txn(`${this.n.id}:caps`, [{
              compare: [{ key, target: "mod", equals: expect }],
              success: [{ op: "put", key, value, lease }],
              read_on_failure: [key],
            }]);
          } catch (err) {
            if (!(err instanceof ModelError)) throw err;
            return this.n.later(
              this.n.w.lat(),
              () => done({ kind: "error", error: err }),
            );
          }
          const rev = this.n.w.etcd.revision;
          if (r.ok && this.n.w.rng.chance(this.n.w.knobs.lost_reply)) {
            return this.n.later(
              this.n.w.lat(),
              () => done({ kind: "error", error: "reply lost" }),
            );
          }
          const current = r.reads[0]?.kv?.mod_revision ?? 0;
          this.n.later(
            this.n.w.lat(),
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
}
