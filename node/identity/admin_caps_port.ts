/**
 * Keeps `cluster_admin` in a live node's caps as the admin path set it.
 *
 * `cluster admin grant|revoke` rewrites the node's caps record (and the grant
 * record) in one transaction. The node's caps publisher then meets a failed
 * compare and writes again: this port, wrapped around the publisher's, first
 * re-reads the grant record, and every value it writes carries the flag the
 * grant record says — so the node never writes back a stale flag, and never
 * sets one itself. Every write of the caps key (the publisher's, the
 * registration's) also compares the grant record's mod as last read: a grant
 * or revoke committed between that read and the write fails it, where a
 * revoke racing a registration used to leave the node admin.
 */
import type { Etcd3 } from "etcd3";
import type { Compare } from "../core/effects.ts";
import type { CasPort, CasResult } from "../shell/cas_publisher.ts";
import type { Keys } from "../keys.ts";
import { readKey } from "./kv.ts";
import { AdminGrant } from "./records.ts";

/** A {@linkcode CasPort} that stamps the granted flag on the node's caps key (other keys pass through). */
export class AdminCapsPort implements CasPort {
  #admin = false;
  /** The grant record's mod revision at the last read (0: absent). */
  #grantMod = 0;

  constructor(
    readonly inner: CasPort,
    readonly client: Etcd3,
    readonly keys: Keys,
    readonly nodeId: string,
  ) {}

  /** The static caps the grant adds: `{cluster_admin: "true"}` or nothing. */
  caps(): Record<string, string> {
    return this.#admin ? { cluster_admin: "true" } : {};
  }

  /** Reads the grant record (at registration, and after a failed compare). */
  async refresh(): Promise<void> {
    const g = await readKey(
      this.client,
      this.keys.admin(this.nodeId),
      AdminGrant,
    );
    this.#admin = g !== null;
    this.#grantMod = g?.mod ?? 0;
  }

  /** The compare every write of the caps key carries: the grant as last read. */
  guard(): Compare[] {
    return [{
      key: this.keys.admin(this.nodeId),
      target: "mod",
      equals: this.#grantMod,
    }];
  }

  put(
    key: string,
    value: string,
    lease: string,
    expectModRevision: number,
    done: (r: CasResult) => void,
  ): void {
    if (key !== this.keys.caps(this.nodeId)) { // plugin records pass through
      return this.inner.put(key, value, lease, expectModRevision, done);
    }
    this.inner.put(key, this.#stamp(value), lease, expectModRevision, (r) => {
      if (r.kind !== "conflict") return done(r);
      // Someone else wrote the record or the grant: maybe the admin path.
      // Learn the flag first; unread, nothing is written with the old one.
      this.refresh().then(
        () => done(r),
        (error) => done({ kind: "error", error }),
      );
    }, this.guard());
  }

  #stamp(value: string): string {
    try {
      const rec = JSON.parse(value) as { static?: Record<string, string> };
      if (rec.static === undefined) return value;
      if (this.#admin) rec.static.cluster_admin = "true";
      else delete rec.static.cluster_admin;
      return JSON.stringify(rec);
    } catch {
      return value;
    }
  }
}
