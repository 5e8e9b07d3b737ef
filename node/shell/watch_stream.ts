/**
 * The node's prefix watch on a Watch stream of its own, decoded by hand
 * (watch_codec.ts). It replaces the etcd3 library's watcher on the hot path:
 * that one turns every event into generic objects (every int64 a string via
 * Long, keys and values as Buffers, an EventEmitter event per key change),
 * and every node pays for every key change of the cluster (docs/scaling.md).
 *
 * It keeps the library's behaviour the node relies on:
 * - the stream is opened through the library's connection pool, so the
 *   channel, its TLS credentials (mTLS clusters), the auth token metadata and
 *   the host's circuit breaker are the client's own;
 * - a stream that fails or ends after the watch was created is reopened with
 *   backoff, resuming right after the last revision delivered (no event lost,
 *   none twice), and a failed stream marks its host failed as the library's
 *   own streams do;
 * - a watch etcd cancels (its start revision compacted, or any other reason)
 *   is reported through `onError`: the watch loop re-lists;
 * - progress notifications are asked for and advance the resume revision.
 */
import { Buffer } from "node:buffer";
import type { Etcd3 } from "etcd3";
import type { KeyChange } from "../core/events.ts";
import { type EtcdPool, etcdPool } from "./etcd_pool.ts";
import {
  decodeWatchResponse,
  encodeWatchCreate,
  type WatchMessage,
} from "./watch_codec.ts";

/** What the watch loop holds: a watch it can cancel. */
export interface PrefixWatch {
  cancel(): Promise<void>;
}

/** The duplex stream grpc-js returns (the part used here). */
interface Duplex {
  write(msg: Uint8Array): boolean;
  cancel(): void;
  on(ev: "data", fn: (m: WatchMessage) => void): Duplex;
  on(ev: "error", fn: (e: Error) => void): Duplex;
  on(ev: "end", fn: () => void): Duplex;
}

/** A grpc-js client of the Watch service (any grpc-js Client can open a raw stream). */
interface GrpcClient {
  makeBidiStreamRequest(
    method: string,
    serialize: (m: Uint8Array) => Buffer,
    deserialize: (b: Buffer) => WatchMessage,
    metadata: unknown,
    options?: Record<string, unknown>,
  ): Duplex;
}

const METHOD = "/etcdserverpb.Watch/Watch";

/** etcd cancelled the watch (its start revision compacted, or another reason): re-list. */
export class WatchCancelled extends Error {}
const serialize = (m: Uint8Array) =>
  Buffer.from(m.buffer, m.byteOffset, m.length);

/** Options of {@linkcode openPrefixWatch}. */
export interface PrefixWatchOptions {
  /** First reconnect delay after a failed stream (ms), doubled up to `maxBackoffMs`. @default 100 */
  backoffMs?: number;
  /** @default 2000 */
  maxBackoffMs?: number;
}

/**
 * Watches [key, rangeEnd) from `fromRevision`. Resolves once etcd created the
 * watch; rejects if the first stream fails or etcd refuses the watch (the
 * caller lists again and retries).
 */
export function openPrefixWatch(
  client: Etcd3,
  key: Uint8Array,
  rangeEnd: Uint8Array,
  fromRevision: number,
  onChanges: (changes: KeyChange[]) => void,
  onError: (err: Error) => void,
  opts: PrefixWatchOptions = {},
): Promise<PrefixWatch> {
  const pool = etcdPool(client);
  const w = new StreamWatch(pool, key, rangeEnd, fromRevision, {
    onChanges,
    onError,
  }, opts);
  return w.open().then(() => w);
}

class StreamWatch implements PrefixWatch {
  #stream: Duplex | null = null;
  #stopped = false;
  #created = false;
  #delay: number;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly pool: EtcdPool,
    readonly key: Uint8Array,
    readonly rangeEnd: Uint8Array,
    /** Where the next stream starts: one past the last revision delivered. */
    public next: number,
    readonly cb: {
      onChanges: (changes: KeyChange[]) => void;
      onError: (err: Error) => void;
    },
    readonly opts: PrefixWatchOptions,
  ) {
    this.#delay = opts.backoffMs ?? 100;
  }

  /** Opens a stream and resolves when etcd created the watch on it. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      this.pool.withConnection("Watch", ({ resource, client, metadata }) => {
        const s = (client as GrpcClient).makeBidiStreamRequest(
          METHOD,
          serialize,
          decodeWatchResponse,
          metadata,
          {},
        );
        this.#stream = s;
        this.#created = false;
        let failed = false;
        const fail = (err: Error) => {
          if (failed || this.#stream !== s) return;
          failed = true;
          this.#stream = null;
          s.cancel();
          if (this.#stopped) return settle(err);
          this.pool.markFailed(resource, err);
          if (!settled) return settle(err);
          this.#reconnect();
        };
        s.on("data", (m) => {
          if (this.#stream !== s) return;
          try {
            this.#onMessage(m, settle);
          } catch (err) {
            // A throwing consumer must not look like a broken stream to grpc-js.
            queueMicrotask(() => {
              throw err;
            });
          }
        });
        s.on("error", (err) => fail(err));
        s.on("end", () => fail(new Error("watch: stream ended")));
        s.write(encodeWatchCreate(this.key, this.rangeEnd, this.next));
      }).catch((err) =>
        settle(err instanceof Error ? err : new Error(String(err)))
      );
    });
  }

  #onMessage(m: WatchMessage, settle: (err: Error | null) => void): void {
    if (m.canceled) {
      const err = new WatchCancelled(
        m.compact_revision > 0
          ? `watch cancelled: revision ${this.next} compacted (compact revision ${m.compact_revision})`
          : `watch cancelled: ${m.cancel_reason || "by etcd"}`,
      );
      const s = this.#stream;
      this.#stream = null;
      s?.cancel();
      if (!this.#created) return settle(err);
      if (!this.#stopped) this.cb.onError(err);
      return;
    }
    if (m.created) {
      this.#created = true;
      this.#delay = this.opts.backoffMs ?? 100;
      settle(null);
    }
    const n = m.changes.length;
    if (n > 0) {
      // Events of one revision arrive in one response (nothing asks for
      // fragments), so resuming after the last one loses none.
      this.next = Math.max(this.next, m.changes[n - 1].revision + 1);
      this.cb.onChanges(m.changes);
    } else if (!m.created && !m.fragment) {
      // A progress notification: every event up to the header's revision is in.
      this.next = Math.max(this.next, m.revision + 1);
    }
  }

  #reconnect(): void {
    const delay = this.#delay;
    this.#delay = Math.min(delay * 2, this.opts.maxBackoffMs ?? 2000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopped) return;
      this.open().catch((err) => {
        if (this.#stopped) return;
        // etcd refused the resumed watch (its revision compacted): re-list.
        if (err instanceof WatchCancelled) this.cb.onError(err);
        else this.#reconnect();
      });
    }, delay);
  }

  cancel(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const s = this.#stream;
    this.#stream = null;
    // Cancelling the call ends its one watch on etcd's side too.
    s?.cancel();
    return Promise.resolve();
  }
}
