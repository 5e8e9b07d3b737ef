/**
 * The node's clock for everything the core decides by: the wall clock, but
 * never behind the time elapsed on the monotonic clock. A wall clock stepped
 * back by D (NTP correcting a fast clock, a VM resumed with an old time)
 * would stamp events D early while the lease's `valid_until` was computed
 * before the step, so the lease would look alive for D longer than it is and
 * a prepared worker could start under a lease etcd had already expired
 * (review of f936da0: the core emitted `spawn` for an event stamped an hour
 * back). Forward jumps are followed: after a suspend the monotonic clock has
 * stood still while the lease ran out, and the wall clock says so.
 *
 * After a backward step it slews back to the wall clock: it runs at 99 % of
 * real time ({@linkcode MAX_SLEW}) until it meets it (an hour's step takes
 * 100 hours), so written timestamps (`started_at`, `not_before`) do not stay
 * ahead for good and never go backwards on one node. Running slow, it would
 * see a lease alive 1 % longer than it lives: lease deadlines are taken
 * that much short ({@linkcode leaseDeadline}).
 */

/** How much slower than real time the clock may run while it slews back. @default 0.01 */
export const MAX_SLEW = 0.01;

/** A clock over the two sources (injectable for tests). */
export function makeClock(
  wall: () => number,
  mono: () => number,
): () => number {
  let offset = -Infinity;
  let lastMono: number | null = null;
  let last = -Infinity;
  return () => {
    const m = mono();
    const target = wall() - m;
    if (target >= offset || lastMono === null) offset = target;
    else offset = Math.max(target, offset - (m - lastMono) * MAX_SLEW);
    lastMono = m;
    last = Math.max(last, Math.round(m + offset));
    return last;
  };
}

/** Until when a lease renewed at `sent` (by this clock) lives, with the slew's margin. */
export function leaseDeadline(sent: number, ttlMs: number): number {
  return sent + Math.floor(ttlMs * (1 - MAX_SLEW));
}

/** Milliseconds since the Unix epoch, never going back (see the module doc). */
export const now: () => number = makeClock(
  Date.now,
  () => performance.now(),
);
