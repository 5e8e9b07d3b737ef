/**
 * Keeps one etcd key (the node's caps record, a plugin record) equal to the
 * value the node wants, by compare-and-swap on the key's last mod revision.
 * One write in flight at a time; a failed compare adopts the revision etcd
 * reports and writes again, so a lost reply (committed, answer never came)
 * cannot leave the remembered revision stale and freeze the record.
 * Callback-style on purpose: the simulator drives the same class on virtual time.
 */
import type { Compare } from "../core/effects.ts";

/** The answer to one compare-and-put. */
export type CasResult =
  | { kind: "ok"; revision: number }
  /** The compare failed; `current` is the key's mod revision now (0: absent). */
  | { kind: "conflict"; current: number }
  /** No answer (etcd unreachable, deadline): the write may or may not have landed. */
  | { kind: "error"; error: unknown };

/** The one I/O a publisher needs. */
export interface CasPort {
  /** `guard`: further compares of the same transaction (what the value was derived from). */
  put(
    key: string,
    value: string,
    lease: string,
    expectModRevision: number,
    done: (r: CasResult) => void,
    guard?: readonly Compare[],
  ): void;
}

export class CasPublisher {
  #rev = 0;
  #want: { value: string; lease: string } | null = null;
  /** The value etcd holds as far as we know; null: unknown. */
  #published: string | null = null;
  #inFlight = false;
  /** Conflicts in a row: stop after a few until the next publish (someone else keeps writing). */
  #conflicts = 0;

  constructor(readonly port: CasPort, readonly key: string) {}

  /** The record was (re)written at `revision` with `value`, e.g. by registration. */
  reset(revision: number, value: string | null): void {
    this.#rev = revision;
    this.#published = value;
    this.#conflicts = 0;
  }

  /** Whether etcd is known to hold what we want. */
  get current(): boolean {
    return this.#want !== null && this.#published === this.#want.value;
  }

  /** Asks for `value` under `lease`; writes now unless a write is in flight (then right after it). */
  publish(value: string, lease: string): void {
    this.#want = { value, lease };
    this.#conflicts = 0;
    this.#kick();
  }

  #kick(): void {
    const want = this.#want;
    if (this.#inFlight || want === null || want.value === this.#published) {
      return;
    }
    if (this.#conflicts >= 3) return;
    this.#inFlight = true;
    this.port.put(this.key, want.value, want.lease, this.#rev, (r) => {
      this.#inFlight = false;
      if (r.kind === "ok") {
        this.#rev = r.revision;
        this.#published = want.value;
        this.#conflicts = 0;
      } else if (r.kind === "conflict") {
        this.#published = null;
        // Absent: the lease is gone with the record; registration resets us.
        if (r.current === 0) return;
        this.#rev = r.current;
        this.#conflicts++;
      } else {
        // Unknown outcome: the next write's compare tells (a conflict adopts the revision).
        this.#published = null;
        return; // retried by the next publish (the node's 1 s caps tick)
      }
      this.#kick();
    });
  }
}
