/**
 * Virtual time for the simulator: a min-heap of callbacks ordered by
 * (time, insertion). Nothing reads the wall clock, so a seed replays exactly.
 */
interface Item {
  at: number;
  seq: number;
  fn: () => void;
}

export class Scheduler {
  now = 0;
  #heap: Item[] = [];
  #seq = 0;
  /** Callbacks run so far: the simulator's unit of work. */
  steps = 0;

  /** Runs `fn` `delay` ms of virtual time from now. */
  after(delay: number, fn: () => void): void {
    this.#push({ at: this.now + Math.max(0, delay), seq: this.#seq++, fn });
  }

  /** Runs callbacks in order until none is left before `until`; returns false if the heap ran dry. */
  runUntil(until: number, stop: () => boolean = () => false): boolean {
    while (this.#heap.length > 0) {
      const top = this.#heap[0];
      if (top.at > until) {
        this.now = until;
        return true;
      }
      this.#pop();
      this.now = top.at;
      this.steps++;
      top.fn();
      if (stop()) return true;
    }
    this.now = until;
    return false;
  }

  #push(it: Item): void {
    const h = this.#heap;
    h.push(it);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    for (let i = 0;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && less(h[l], h[m])) m = l;
      if (r < h.length && less(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}

function less(a: Item, b: Item): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
