/**
 * A bounded map that forgets the least recently used entry first: the spec
 * caches on both ends of a workspace plugin's connection (spec_cache_*.ts)
 * hold at most a known number of specs (and bytes), however many a node has
 * seen.
 * @module
 */

/** Bounds of an {@linkcode Lru}. */
export interface LruOptions<V> {
  /** At most this many entries (an integer ≥ 1). */
  max: number;
  /**
   * At most this much total weight; the newest entry is kept even if it
   * alone weighs more.
   * @default Infinity
   */
  maxWeight?: number;
  /**
   * An entry's weight, e.g. its size in bytes.
   * @default () => 0
   */
  weight?: (v: V) => number;
}

/** A Map in recency order (a JS Map iterates in insertion order). */
export class Lru<K, V> {
  readonly #map = new Map<K, V>();
  readonly #max: number;
  readonly #maxWeight: number;
  readonly #weight: (v: V) => number;
  #total = 0;

  constructor(options: LruOptions<V>) {
    if (!Number.isInteger(options.max) || options.max < 1) {
      throw new Error(`Lru: max must be an integer ≥ 1: got ${options.max}`);
    }
    this.#max = options.max;
    this.#maxWeight = options.maxWeight ?? Infinity;
    this.#weight = options.weight ?? (() => 0);
  }

  /** The value, marked as used now; undefined if absent. */
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, v);
    return v;
  }

  /** The value without marking it used. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  /** Stores `value` as the most recent; evicts the oldest past the bounds. */
  set(key: K, value: V): void {
    this.delete(key);
    this.#map.set(key, value);
    this.#total += this.#weight(value);
    while (
      this.#map.size > 1 &&
      (this.#map.size > this.#max || this.#total > this.#maxWeight)
    ) {
      this.delete(this.#map.keys().next().value as K);
    }
  }

  delete(key: K): void {
    const v = this.#map.get(key);
    if (v === undefined) return;
    this.#map.delete(key);
    this.#total -= this.#weight(v);
  }

  get size(): number {
    return this.#map.size;
  }

  /** Total weight held. */
  get weight(): number {
    return this.#total;
  }

  /** Keys, oldest first. */
  keys(): K[] {
    return [...this.#map.keys()];
  }
}
