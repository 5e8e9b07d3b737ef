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
 * Written timestamps (`started_at`, `finished_at`) come from it too, so
 * after a backward step they run ahead of the wall clock by the step until
 * the wall clock catches up, and never go backwards on one node.
 */

/** A clock over the two sources (injectable for tests). */
export function makeClock(
  wall: () => number,
  mono: () => number,
): () => number {
  let offset = -Infinity;
  let last = -Infinity;
  return () => {
    const m = mono();
    offset = Math.max(offset, wall() - m);
    last = Math.max(last, Math.round(m + offset));
    return last;
  };
}

/** Milliseconds since the Unix epoch, never going back (see the module doc). */
export const now: () => number = makeClock(
  Date.now,
  () => performance.now(),
);
