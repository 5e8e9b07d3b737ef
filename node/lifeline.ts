/**
 * The lifeline from `node/launch.ts` (BOI_LIFELINE=stdin): the launcher holds
 * the write end of our stdin and never writes, so end of input means it died
 * (even by SIGKILL, which it cannot pass on) and the node must not outlive it.
 * @module
 */

/** Calls `onClosed` once when stdin reaches its end (or fails). */
export function watchLifeline(onClosed: () => void): void {
  (async () => {
    try {
      for await (const _ of Deno.stdin.readable) {
        // the launcher never writes: ignore anything that comes
      }
    } catch {
      // a read error means the same: the other end is gone
    }
    onClosed();
  })();
}
