/**
 * The node's membership (SPEC §2): one lease, and the node and caps records
 * under it, written with `version == 0` so two processes never share an id
 * (a previous incarnation's record is waited out for TTL + 3 s, then
 * refused). When etcd says the lease is gone the core hears `lease_lost`
 * (it stops claiming and kills the workers of lost claims) and the node
 * registers again with a new lease. Each registration first checks the
 * cluster's data format (cluster_format.ts).
 */
import type { Etcd3 } from "etcd3";
import { isUnreachable } from "../etcd_errors.ts";
import type { Keys } from "../keys.ts";
import type { CapsRecord, NodeRecord } from "../schema.ts";
import type { Compare, NodeEvent } from "../core/mod.ts";
import { VERSION } from "../version.ts";
import { checkDataFormat, DataFormatError } from "./cluster_format.ts";
import { runTxn } from "./etcd_io.ts";
import type { EtcdHealth } from "./etcd_health.ts";
import { LeaseKeeper } from "./lease.ts";
import type { Logger } from "./log.ts";
import { leaseDeadline, now } from "./clock.ts";

/** etcd answered, and the answer is that this node may not register. */
export class RegistrationRefused extends Error {}

/** etcd refusing for now, not this node for good: NOSPACE, too many requests (grpc 8). */
function temporary(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === 8 ||
    (typeof e?.message === "string" &&
      /^8 RESOURCE_EXHAUSTED\b/.test(e.message));
}

function refused(err: unknown): err is Error {
  return err instanceof RegistrationRefused || err instanceof DataFormatError;
}

export interface RegistrationDeps {
  client: Etcd3;
  keys: Keys;
  node_id: string;
  lease_ttl_s: number;
  /** Advertised address (host:port). */
  addr: string;
  startedAt: number;
  log: Logger;
  health: EtcdHealth;
  push: (ev: NodeEvent) => void;
  /** The caps record to register with (async: the admin grant is read first, identity/). */
  caps: () => CapsRecord | Promise<CapsRecord>;
  /** Compares of what `caps` was derived from (the admin grant as read). @default none */
  capsGuard?: () => Compare[];
  /** Registered at `revision` with `caps` (JSON): publishers start from there. */
  onRegistered: (revision: number, caps: string) => void;
  stopping: () => boolean;
  /** The node must stop: it may not register on this cluster (exit 1). */
  fatal: (err: Error) => void;
}

export class Registration {
  #lease: LeaseKeeper | null = null;
  #registering = false;
  /** The unreadable-record warning last logged: once, not on every attempt. */
  #formatWarned: string | null = null;

  constructor(readonly deps: RegistrationDeps) {}

  /**
   * Grants a lease and writes the node and caps records under it; resolves
   * once registered. `again`: after a lost lease, when every answer of etcd
   * but a refusal of the node is waited out (see the catch below).
   */
  async register(again = false): Promise<void> {
    const { client, keys, node_id, log, health } = this.deps;
    const ttl = this.deps.lease_ttl_s;
    // From etcd's first "taken", not from the start: an etcd restart extends
    // every lease by a TTL, so after a long outage the previous record can
    // still be there for a TTL, and waiting less would refuse our own id.
    let waitUntil: number | null = null;
    let lastError: string | null = null;
    let loggedAt = -Infinity;
    for (let delay = 100;; delay = Math.min(delay * 2, 2000)) {
      if (this.deps.stopping()) return;
      // This attempt's lease until the node holds it. A write that got no
      // answer may have committed under it: kept alive, its record would
      // make every later attempt "taken" until the id is refused.
      let granted: LeaseKeeper | null = null;
      try {
        const warning = await checkDataFormat(client, keys);
        if (warning !== null && warning !== this.#formatWarned) {
          this.#formatWarned = warning;
          log.warn(warning);
        }
        // deno-lint-ignore prefer-const
        let lease: LeaseKeeper;
        const grantedAt = now();
        lease = await LeaseKeeper.grant(client, ttl, {
          onLost: () => this.#onLeaseLost(lease),
          onAlive: (validUntil) => {
            health.mark(true);
            this.deps.push({
              type: "lease_renewed",
              at: now(),
              lease_id: lease.id,
              valid_until: validUntil,
            });
          },
          onUnreachable: (err) => {
            if (isUnreachable(err)) health.mark(false, err);
          },
        });
        granted = lease;
        const id = lease.id;
        const rec: NodeRecord = {
          node_id,
          addr: this.deps.addr,
          version: VERSION,
          started_at: this.deps.startedAt,
          pid: Deno.pid,
        };
        const caps = JSON.stringify(await this.deps.caps());
        const res = await runTxn(
          client,
          [
            { key: keys.node(node_id), target: "version", equals: 0 },
            ...this.deps.capsGuard?.() ?? [],
          ],
          [
            {
              op: "put",
              key: keys.node(node_id),
              value: JSON.stringify(rec),
              lease: id,
            },
            { op: "put", key: keys.caps(node_id), value: caps, lease: id },
          ],
          5000,
          [keys.node(node_id)],
        );
        if (!res.ok) {
          await lease.revoke().catch(() => {});
          // The id is free: what the caps came from moved (a grant or revoke
          // meanwhile). The next attempt reads it again.
          if (!res.reads?.[0]?.kv) continue;
          // A previous incarnation's record lives until its lease expires.
          waitUntil ??= now() + (ttl + 3) * 1000;
          if (now() > waitUntil) {
            throw new RegistrationRefused(
              `node id ${node_id} is already registered by a live node: pick another BOI_NODE_ID`,
            );
          }
          log.info(
            "waiting for a previous registration of this node id to expire",
          );
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        this.#lease = lease;
        health.mark(true);
        log.info("registered", { lease_id: id, revision: res.revision });
        this.deps.onRegistered(res.revision, caps);
        this.deps.push({
          type: "lease_granted",
          at: now(),
          lease_id: id,
          valid_until: leaseDeadline(grantedAt, ttl * 1000),
        });
        return;
      } catch (err) {
        if (granted !== null && granted !== this.#lease) {
          await granted.revoke().catch(() => {}); // or it expires in a TTL
        }
        if (refused(err)) throw err;
        if (isUnreachable(err)) health.mark(false, err);
        else {
          // etcd answered, but not with a verdict on this node: a NOSPACE
          // alarm refusing the lease grant, "too many requests" under load.
          // Retried like an outage: given up, a node that lost its lease
          // stayed up unregistered for good (review of 07942af, NOSPACE).
          // At start, anything else (a permission or credentials error) is
          // the operator's to fix: the start fails and says so.
          if (!again && !temporary(err)) throw err;
          const why = String(err).split("\n")[0];
          if (why !== lastError || now() - loggedAt >= 30_000) {
            lastError = why;
            loggedAt = now();
            log.warn("registration failed: retrying", { error: why });
          }
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Graceful stop: revoke the lease so other nodes take the claims over at once. */
  async revoke(): Promise<void> {
    await this.#lease?.revoke().catch(() => {});
  }

  #onLeaseLost(lease: LeaseKeeper): void {
    if (this.#lease !== lease || this.deps.stopping()) return;
    this.#lease = null;
    this.deps.log.warn(
      "lease lost: stop claiming, kill workers of lost claims, register again",
      { lease_id: lease.id },
    );
    this.deps.push({ type: "lease_lost", at: now() });
    if (this.#registering) return;
    this.#registering = true;
    this.register(true).catch((e) => {
      // Refused (a cluster this node may not read, or its id taken by a live
      // process meanwhile): stop, as at start, rather than stay up
      // unregistered with its plugins and HTTP running.
      if (refused(e)) return this.deps.fatal(e);
      // Not reached for etcd's answers (register retries them): a bug.
      this.deps.log.error("re-registration failed", { error: String(e) });
    }).finally(() => this.#registering = false);
  }
}
