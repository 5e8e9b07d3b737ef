/**
 * The node's one lease. Unlike the client library's keeper, it declares the
 * lease lost only when etcd says so (TTL 0): while etcd is unreachable nobody
 * can tell, and etcd restores leases across a restart, so workers keep
 * running and their results wait for the fence check instead of being thrown
 * away on a local timer.
 */
import type { Etcd3 } from "etcd3";
import { deadline, EtcdNoAnswerError } from "../etcd_errors.ts";
import { leaseDeadline, now } from "./clock.ts";

export interface LeaseEvents {
  /** etcd confirmed the lease is gone (expired or revoked). */
  onLost(): void;
  /** A keepalive got through; the lease lives at least until `validUntil` (ms epoch). */
  onAlive(validUntil: number): void;
  /** A keepalive could not reach etcd. */
  onUnreachable(err: unknown): void;
}

export class LeaseKeeper {
  #timer: ReturnType<typeof setInterval> | null = null;
  #busy = false;
  #closed = false;

  private constructor(
    private readonly client: Etcd3,
    readonly id: string,
    readonly ttlS: number,
    private readonly events: LeaseEvents,
  ) {}

  /** Grants a lease and starts keeping it alive every TTL/3. */
  static async grant(
    client: Etcd3,
    ttlS: number,
    events: LeaseEvents,
  ): Promise<LeaseKeeper> {
    const res = await client.leaseClient.leaseGrant(
      { TTL: ttlS },
      deadline(3000),
    );
    const k = new LeaseKeeper(client, String(res.ID), ttlS, events);
    k.#timer = setInterval(() => k.#keepalive(), (ttlS * 1000) / 3);
    return k;
  }

  /**
   * One keepalive round: a few attempts, since the client opens each stream
   * on a shuffled member and one of several may be dead (it refuses at once,
   * so the next attempt usually lands on a live one).
   */
  async #keepalive(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    const roundMs = (this.ttlS * 1000) / 3;
    const until = now() + roundMs;
    let lastErr: unknown = null;
    try {
      for (let attempt = 0; attempt < 3 && !this.#closed; attempt++) {
        const left = until - now();
        if (attempt > 0 && left < 100) break;
        const sent = now();
        const ttl = await this.#once(Math.max(300, left / (3 - attempt))).catch(
          (e) => {
            lastErr = e;
            return null;
          },
        );
        if (ttl === null) continue;
        if (this.#closed) return;
        if (ttl <= 0) {
          this.close();
          this.events.onLost();
        } else {
          this.events.onAlive(leaseDeadline(sent, ttl * 1000));
        }
        return;
      }
      if (!this.#closed) this.events.onUnreachable(lastErr);
    } finally {
      this.#busy = false;
    }
  }

  /** Sends one keepalive; resolves with the TTL etcd grants (0: the lease is gone). */
  async #once(timeoutMs: number): Promise<number> {
    const stream = await this.client.leaseClient.leaseKeepAlive(
      deadline(timeoutMs),
    );
    try {
      return await new Promise<number>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new EtcdNoAnswerError("a keepalive", timeoutMs)),
          timeoutMs,
        );
        stream.on("data", (r) => {
          clearTimeout(t);
          resolve(Number(r.TTL));
        });
        stream.on("error", (e) => {
          clearTimeout(t);
          reject(e);
        });
        stream.write({ ID: this.id });
      });
    } finally {
      stream.end();
    }
  }

  /** Stops keeping the lease alive; it expires on its own after the TTL. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Releases the lease now: every key bound to it (claims included) goes at once. */
  async revoke(): Promise<void> {
    this.close();
    await this.client.leaseClient.leaseRevoke({ ID: this.id }, deadline(2000));
  }
}
