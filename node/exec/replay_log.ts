/**
 * One worker's events as the reference pool holds them for its followers
 * (the Spawn stream, and a re-attach: a second Spawn of the same key).
 *
 * Output is kept only until every follower has taken it, and then only the
 * last {@linkcode REPLAY_BYTES} for a later re-attach: before, every chunk
 * stayed until 60 s after the exit, so a task writing 300 MB grew the pool
 * plugin by 391 MB (review of 97b9905), and a pool that runs out of memory
 * loses every task of its node. `started` and `exit` are always kept. A
 * follower that falls behind keeps what it has not taken: nothing is lost
 * for a live stream; a re-attach after a long output starts at the kept tail.
 */
import type { WorkerEvent } from "./contracts.ts";

/** Output bytes kept for a re-attach once every follower has them. @default 1 MiB */
export const REPLAY_BYTES = 1 << 20;

const outputBytes = (ev: WorkerEvent): number =>
  "stdout" in ev ? ev.stdout.length : "stderr" in ev ? ev.stderr.length : 0;

export class ReplayLog {
  /** `started`, never dropped. */
  #head: WorkerEvent[] = [];
  /** The rest, from absolute index `#base`; `#off` entries at the front are dropped. */
  #tail: (WorkerEvent | null)[] = [];
  #off = 0;
  #base = 0;
  #held = 0;
  #cursors = new Set<{ i: number }>();
  #waiters = new Set<() => void>();
  #done = false;

  constructor(readonly limit = REPLAY_BYTES) {}

  /** The `exit` event is in. */
  get done(): boolean {
    return this.#done;
  }

  /** Output bytes held now (for tests and metrics). */
  get held(): number {
    return this.#held;
  }

  push(ev: WorkerEvent): void {
    if ("started" in ev) this.#head.push(ev);
    else this.#tail.push(ev);
    this.#held += outputBytes(ev);
    if ("exit" in ev) this.#done = true;
    this.#trim();
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  /**
   * Everything kept so far, then each new event until `exit`. The follower
   * counts from this call, not from its first read: output pushed before the
   * Spawn stream reads is its own.
   */
  follow(): AsyncIterable<WorkerEvent> {
    const c = { i: this.#base };
    this.#cursors.add(c);
    return this.#follow(c);
  }

  async *#follow(c: { i: number }): AsyncIterable<WorkerEvent> {
    let h = 0;
    try {
      for (;;) {
        while (h < this.#head.length) yield this.#head[h++];
        // Dropped before this follower came (a re-attach): the kept tail.
        if (c.i < this.#base) c.i = this.#base;
        const end = this.#base + this.#tail.length - this.#off;
        if (c.i < end) {
          const ev = this.#tail[this.#off + c.i - this.#base]!;
          c.i++;
          this.#trim();
          yield ev;
          continue;
        }
        if (this.#done) return;
        await new Promise<void>((resolve) => this.#waiters.add(resolve));
      }
    } finally {
      this.#cursors.delete(c);
      this.#trim();
    }
  }

  /** Drops the oldest output every follower has taken while more than `limit` is held. */
  #trim(): void {
    if (this.#held <= this.limit) return;
    let min = Infinity;
    for (const c of this.#cursors) min = Math.min(min, c.i);
    while (
      this.#held > this.limit && this.#off < this.#tail.length &&
      this.#base < min
    ) {
      const ev = this.#tail[this.#off]!;
      if ("exit" in ev) break; // only output goes, and `exit` is last
      this.#held -= outputBytes(ev);
      this.#tail[this.#off] = null; // its bytes go now, not at the next compaction
      this.#off++;
      this.#base++;
    }
    if (this.#off > 1024 && this.#off * 2 > this.#tail.length) {
      this.#tail = this.#tail.slice(this.#off);
      this.#off = 0;
    }
  }
}
