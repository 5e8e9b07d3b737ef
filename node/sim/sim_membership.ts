/**
 * The simulated node's membership and view feed: registration under a lease
 * (version == 0, like the real one), keepalive every TTL/3 (loss only when
 * etcd says the lease is gone), list-then-watch pulling from the model's
 * history with delays, duplicates and re-list after compaction.
 */
import type { NodeRecord } from "../schema.ts";
import { capsRecord } from "../core/caps_record.ts";
import type { SimNode } from "./sim_node.ts";

export class SimMembership {
  #keeper = 0;
  #lease: string | null = null;
  #delivered = 0;
  #unsub: (() => void) | null = null;
  #pumping = false;

  constructor(readonly n: SimNode) {}

  /** The node crashed: no more deliveries. */
  stop(): void {
    this.#unsub?.();
  }

  register(delay: number): void {
    if (!this.n.w.reachable(this.n.id)) {
      return this.n.later(
        delay,
        () => this.register(Math.min(delay * 2, 2000)),
      );
    }
    this.n.later(this.n.w.lat(), () => {
      if (!this.n.w.reachable(this.n.id)) return this.register(delay);
      const etcd = this.n.w.etcd;
      const grantedAt = this.n.now;
      const lease = etcd.grant(this.n.w.params.lease_ttl_ms);
      const keys = this.n.w.keys;
      const rec: NodeRecord = {
        node_id: this.n.id,
        addr: "sim:1",
        version: "sim",
        started_at: 0,
        pid: this.n.incarnation,
      };
      const caps = capsRecord(this.n.view, this.n.now, this.n.flush.length);
      const [r] = etcd.txn(`${this.n.id}:register`, [{
        compare: [{ key: keys.node(this.n.id), target: "version", equals: 0 }],
        success: [
          {
            op: "put",
            key: keys.node(this.n.id),
            value: JSON.stringify(rec),
            lease,
          },
          {
            op: "put",
            key: keys.caps(this.n.id),
            value: JSON.stringify(caps),
            lease,
          },
        ],
      }]);
      if (!r.ok) {
        etcd.revoke(lease);
        return this.n.later(500, () => this.register(delay));
      }
      this.n.etcdSide.capsPub.reset(etcd.revision, JSON.stringify(caps));
      this.#lease = lease;
      const keeper = ++this.#keeper;
      this.n.w.trace(`${this.n.id} registered lease ${lease}`);
      this.n.later(this.n.w.lat(), () => {
        this.n.push({
          type: "lease_granted",
          at: this.n.now,
          lease_id: lease,
          valid_until: grantedAt + this.n.w.params.lease_ttl_ms,
        });
        if (this.#unsub === null) this.#relist();
      });
      const beat = () => {
        if (keeper !== this.#keeper) return;
        if (this.n.w.reachable(this.n.id)) {
          const sent = this.n.now;
          if (etcd.keepalive(lease) === 0) return this.#leaseLost(keeper);
          this.n.later(this.n.w.lat(), () =>
            this.n.push({
              type: "lease_renewed",
              at: this.n.now,
              lease_id: lease,
              valid_until: sent + this.n.w.params.lease_ttl_ms,
            }));
        }
        this.n.later(this.n.w.params.lease_ttl_ms / 3, beat);
      };
      this.n.later(this.n.w.params.lease_ttl_ms / 3, beat);
    });
  }

  #leaseLost(keeper: number): void {
    if (keeper !== this.#keeper) return;
    this.#keeper++;
    this.#lease = null;
    this.n.w.trace(`${this.n.id} lease lost`);
    this.n.push({ type: "lease_lost", at: this.n.now });
    this.register(100);
  }

  #relist(): void {
    if (!this.n.w.reachable(this.n.id)) {
      return this.n.later(200, () => this.#relist());
    }
    this.n.later(this.n.w.lat(), () => {
      if (!this.n.w.reachable(this.n.id)) return this.#relist();
      const { revision, kvs } = this.n.w.etcd.list(this.n.w.keys.prefix);
      this.n.push({ type: "relist", at: this.n.now, revision, kvs });
      this.#delivered = revision;
      this.#unsub?.();
      this.#unsub = this.n.w.etcd.subscribe(() => this.pump());
      this.pump();
    });
  }

  /** Delivers watch history after the last delivered revision, with a delay. */
  pump(): void {
    if (this.#pumping || !this.n.alive || this.#unsub === null) return;
    if (!this.n.w.reachable(this.n.id)) return; // stalls; `onHeal` pumps again
    const pending = this.n.w.etcd.since(this.#delivered);
    if (pending === null) {
      this.#unsub();
      this.#unsub = null;
      this.n.w.trace(`${this.n.id} watch compacted: re-list`);
      return this.n.later(this.n.w.lat(), () => this.#relist());
    }
    if (pending.length === 0) return;
    this.#pumping = true;
    this.n.later(this.n.w.rng.next() * this.n.w.knobs.watch_delay_max, () => {
      this.#pumping = false;
      if (!this.n.w.reachable(this.n.id) || this.#unsub === null) return;
      const batch = this.n.w.etcd.since(this.#delivered);
      if (batch === null) return this.pump();
      if (batch.length === 0) return;
      // A watcher that fell behind gets its backlog in one large response, as from etcd.
      const take = batch.length > 4
        ? batch
        : batch.slice(0, 1 + this.n.w.rng.int(0, 3));
      const changes = take.flatMap((h) => h.changes);
      this.#delivered = take[take.length - 1].revision;
      this.n.push({ type: "changes", at: this.n.now, changes });
      if (this.n.w.rng.chance(this.n.w.knobs.dup_watch)) {
        this.n.later(
          this.n.w.lat(),
          () => this.n.push({ type: "changes", at: this.n.now, changes }),
        );
      }
      this.pump();
    });
  }
}
