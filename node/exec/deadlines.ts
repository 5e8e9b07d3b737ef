/**
 * Deadlines of many calls on one timer. A timer per call (setTimeout, then
 * clearTimeout when the answer comes) cost 10-25 µs a pair on this machine
 * (measured), two per task for Prepare and Cleanup. Calls with the same
 * timeout expire in the order they started, so each timeout value keeps a
 * FIFO and one timer is armed for the earliest head; a call that settles is
 * only marked, and dropped once it reaches the head. The timer is not
 * cleared when the last call settles (that would be a timer pair per call
 * again when calls come one at a time): it fires once, finds nothing due,
 * and stays off until the next call; {@linkcode Deadlines.stop} clears it.
 * @module
 */

/** One call's deadline; {@linkcode Deadlines.settle} it when the call ends. */
export interface Deadline {
  readonly at: number;
  /** Called once, at the deadline, unless settled before. */
  readonly fire: () => void;
  settled: boolean;
}

/** A FIFO with an offset head (Array.shift copies). */
class Queue {
  items: Deadline[] = [];
  head = 0;

  peek(): Deadline | undefined {
    return this.items[this.head];
  }

  shift(): void {
    this.items[this.head++] = undefined as never;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Drops settled entries at the head. */
  prune(): void {
    for (let d = this.peek(); d?.settled; d = this.peek()) this.shift();
  }
}

/** See the module doc; one per connection, or shared. */
export class Deadlines {
  readonly #queues = new Map<number, Queue>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #timerAt = Infinity;

  /** Calls `fire` in `timeout_ms` unless the result is settled first. */
  add(timeout_ms: number, fire: () => void): Deadline {
    const d: Deadline = {
      at: performance.now() + timeout_ms,
      fire,
      settled: false,
    };
    let q = this.#queues.get(timeout_ms);
    if (!q) this.#queues.set(timeout_ms, q = new Queue());
    q.items.push(d);
    if (d.at < this.#timerAt) this.#arm(d.at);
    return d;
  }

  /** The call ended: its deadline will not fire. */
  settle(d: Deadline, timeout_ms: number): void {
    d.settled = true;
    const q = this.#queues.get(timeout_ms);
    if (q?.peek() === d) q.prune();
  }

  /** Drops every deadline and the timer (the connection is gone). */
  stop(): void {
    this.#queues.clear();
    this.#disarm();
  }

  /** Deadlines not yet settled or fired, settled ones not yet dropped included. */
  get size(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.items.length - q.head;
    return n;
  }

  #arm(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#expire, Math.max(0, at - performance.now()));
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
  }

  #expire = (): void => {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = performance.now();
    const due: Deadline[] = [];
    let next = Infinity;
    for (const [timeout, q] of this.#queues) {
      for (let d = q.peek(); d && (d.settled || d.at <= now); d = q.peek()) {
        q.shift();
        if (!d.settled) due.push(d);
      }
      const head = q.peek();
      if (head === undefined) this.#queues.delete(timeout);
      else next = Math.min(next, head.at);
    }
    if (next < Infinity) this.#arm(next);
    for (const d of due) {
      d.settled = true;
      d.fire();
    }
  };
}
