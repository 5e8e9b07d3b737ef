/**
 * The node's TCP front door (issue 11). `Deno.serve` (Deno 2.9) has no
 * header timeout, no idle timeout and no connection limit, and when accept
 * fails with EMFILE its accept loop ends and the error escapes as an
 * uncaught rejection; `node:http` times out headers but its accept loop
 * stops for good after EMFILE. So the node accepts TCP itself, here, and
 * relays each connection byte for byte to `Deno.serve` listening on a Unix
 * socket in the data dir (mode 0600). The relay never parses HTTP beyond
 * finding the end of the first request head, so routing still sees the raw
 * request target.
 *
 * Rules (docs/operations.md, "Limits"):
 * - at most `maxConnections` connections; a new one over the limit first
 *   evicts the oldest connection that has not finished its first request
 *   head, else the one idle longest (no byte either way for 1 s or more),
 *   else it is closed at once. A flood of idle sockets thus never locks out
 *   `/healthz`, whose connection sends its request at once.
 * - a connection must finish its first request head within
 *   `headerTimeoutMs` and in at most `maxHeaderBytes`, or it is closed.
 * - an accept that fails (EMFILE, ENFILE, …) is logged (once per episode),
 *   frees the longest-idle connection, and is retried after a pause; nothing
 *   in the accept path can end the process.
 */
import type { Logger } from "./log.ts";
import {
  CHUNK,
  closeQuietly,
  concat,
  drain,
  type InnerServer,
  serveInner,
  sleep,
  writeAll,
} from "./http_front_io.ts";
import { connectionLimit, openFileLimit } from "./fd_limit.ts";

export { connectionLimit, openFileLimit };

/** The inner server's Unix socket cannot be created (a path too long, a read-only data dir). */
export class SocketPathError extends Error {
  constructor(readonly path: string, why: string) {
    super(`cannot listen on ${path}: ${why}`);
  }
}

/** Options of `HttpFront.listen`. */
export interface FrontOptions {
  hostname: string;
  port: number;
  /** Where the inner `Deno.serve` listens; removed first if stale. */
  socketPath: string;
  /** @default connectionLimit(await openFileLimit()) */
  maxConnections?: number;
  /** From accept to the end of the first request head. @default 10000 */
  headerTimeoutMs?: number;
  /** Largest first request head. @default 65536 */
  maxHeaderBytes?: number;
  /**
   * Relay the bytes without reading them (TLS the inner server ends, for
   * client certificates): a connection counts as having sent its head at
   * its first byte, `headerTimeoutMs` times that first byte, and
   * `maxHeaderBytes` does not apply. @default false
   */
  passthrough?: boolean;
  log: Pick<Logger, "info" | "warn" | "error">;
}

/** Default header timeout (ms): slow links send a request head in well under this. */
export const HEADER_TIMEOUT_MS = 10_000;
/** Idle for at least this long (ms), a connection may be evicted for a new one. */
const EVICTABLE_IDLE_MS = 1000;
const END_OF_HEAD = [13, 10, 13, 10];

interface Relay {
  conn: Deno.Conn;
  upstream: Deno.Conn | null;
  accepted: number;
  active: number;
  /** The first request head has ended. */
  headed: boolean;
  closed: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Counters for tests and metrics. */
export interface FrontStats {
  open: number;
  accepted: number;
  evicted: number;
  refused: number;
  headerTimeouts: number;
  acceptErrors: number;
}

/** The TCP listener, its relays, and the inner `Deno.serve` it feeds. */
export class HttpFront {
  readonly addr: Deno.NetAddr;
  readonly stats: FrontStats = {
    open: 0,
    accepted: 0,
    evicted: 0,
    refused: 0,
    headerTimeouts: 0,
    acceptErrors: 0,
  };
  #relays = new Set<Relay>();
  #closing = false;
  /** Resolves while the inner server listens; replaced while it restarts. */
  #innerReady: Promise<void> = Promise.resolve();
  #inner: InnerServer;
  #innerLoop: Promise<void>;
  #acceptLoop: Promise<void>;

  private constructor(
    private readonly listener: Deno.TcpListener,
    inner: InnerServer,
    private readonly opts: FrontOptions,
    private readonly startInner: () => Promise<InnerServer>,
    readonly maxConnections: number,
  ) {
    this.addr = listener.addr;
    this.#inner = inner;
    this.#innerLoop = this.#keepInner();
    this.#acceptLoop = this.#accept();
  }

  /**
   * Listens on `hostname:port` and the Unix socket; throws as `Deno.listen`
   * does (AddrInUse, …) before anything runs, so the caller can name the
   * variable at fault.
   */
  static listen(
    opts: FrontOptions,
    handler: (req: Request) => Response | Promise<Response>,
  ): Promise<HttpFront> {
    return HttpFront.relay(opts, () => serveInner(opts.socketPath, handler));
  }

  /** {@linkcode listen} in front of any server on `opts.socketPath` that `startInner` starts. */
  static async relay(
    opts: FrontOptions,
    startInner: () => Promise<InnerServer>,
  ): Promise<HttpFront> {
    const max = opts.maxConnections ?? connectionLimit(await openFileLimit());
    const listener = Deno.listen({ hostname: opts.hostname, port: opts.port });
    let inner;
    try {
      inner = await startInner();
    } catch (e) {
      listener.close();
      throw new SocketPathError(opts.socketPath, (e as Error).message);
    }
    return new HttpFront(listener, inner, opts, startInner, max);
  }

  /** Stops accepting, lets the inner server finish its requests, closes every relay. */
  async shutdown(): Promise<void> {
    this.#closing = true;
    closeQuietly(this.listener);
    await this.#acceptLoop;
    await this.#inner.shutdown().catch(() => {});
    for (const r of this.#relays) this.#close(r);
    await this.#innerLoop;
    await Deno.remove(this.opts.socketPath).catch(() => {});
  }

  /** If the inner server's accept loop dies (EMFILE), logs it and starts it again. */
  async #keepInner(): Promise<void> {
    while (!this.#closing) {
      try {
        await this.#inner.finished;
        return; // shut down
      } catch (e) {
        this.opts.log.error("http inner server stopped; restarting", {
          error: (e as Error).message,
        });
      }
      const ready = Promise.withResolvers<void>();
      this.#innerReady = ready.promise;
      while (!this.#closing) {
        await sleep(100);
        try {
          this.#inner = await this.startInner();
          break;
        } catch (e) {
          this.opts.log.error("http inner server cannot listen", {
            path: this.opts.socketPath,
            error: (e as Error).message,
          });
        }
      }
      ready.resolve();
    }
  }

  async #accept(): Promise<void> {
    let pause = 10;
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.listener.accept();
      } catch (e) {
        if (this.#closing) return;
        // EMFILE/ENFILE and the like: the listener stays usable. Free what
        // idle sockets hold (a relayed request needs three descriptors) and
        // try again after a pause.
        this.stats.acceptErrors++;
        this.#warnOutOfFds(e);
        this.#shed(3);
        await sleep(pause);
        pause = Math.min(pause * 2, 1000);
        continue;
      }
      pause = 10;
      this.stats.accepted++;
      if (this.#relays.size >= this.maxConnections) {
        const victim = this.#victim(EVICTABLE_IDLE_MS);
        if (victim === null) {
          this.stats.refused++;
          closeQuietly(conn);
          continue;
        }
        this.#evict(victim);
      }
      this.#relay(conn);
    }
  }

  /** The oldest connection still without a request head, else the one idle longest (at least `minIdleMs`). */
  #victim(minIdleMs: number, keep?: Relay): Relay | null {
    const now = Date.now();
    let unheaded: Relay | null = null;
    let idle: Relay | null = null;
    for (const r of this.#relays) {
      if (r === keep) continue;
      if (!r.headed) {
        if (unheaded === null || r.accepted < unheaded.accepted) unheaded = r;
      } else if (
        now - r.active >= minIdleMs && (idle === null || r.active < idle.active)
      ) idle = r;
    }
    return unheaded ?? idle;
  }

  #evict(r: Relay): void {
    this.stats.evicted++;
    this.#close(r);
  }

  #relay(conn: Deno.Conn): void {
    const now = Date.now();
    const r: Relay = {
      conn,
      upstream: null,
      accepted: now,
      active: now,
      headed: false,
      closed: false,
      timer: undefined,
    };
    this.#relays.add(r);
    this.stats.open = this.#relays.size;
    r.timer = setTimeout(() => {
      if (!r.headed) {
        this.stats.headerTimeouts++;
        this.#close(r);
      }
    }, this.opts.headerTimeoutMs ?? HEADER_TIMEOUT_MS);
    this.#pump(r).catch(() => {}).finally(() => this.#close(r));
  }

  /**
   * Client to inner server; the answer flows back beside it once connected.
   * The first request head is held here until it ends, so a connection that
   * never sends one costs one descriptor and never reaches the inner server.
   */
  async #pump(r: Relay): Promise<void> {
    const maxHead = this.opts.maxHeaderBytes ?? 65536;
    const buf = new Uint8Array(CHUNK);
    const head: Uint8Array[] = [];
    let headBytes = 0;
    let matched = 0;
    let back: Promise<void> | null = null;
    for (;;) {
      const n = await r.conn.read(buf);
      if (n === null) break;
      r.active = Date.now();
      let chunk: Uint8Array = buf.subarray(0, n);
      if (this.opts.passthrough) r.headed = true;
      if (!r.headed) {
        let i = 0;
        for (; i < n && !r.headed; i++) {
          const b = chunk[i];
          matched = b === END_OF_HEAD[matched] ? matched + 1 : b === 13 ? 1 : 0;
          r.headed = matched === 4;
        }
        headBytes += i;
        if (headBytes > maxHead) {
          await writeAll(r.conn, HEAD_TOO_LARGE).catch(() => {});
          // Lingering close: unread input would turn our FIN into a reset
          // that can destroy the 431 before the client reads it.
          await r.conn.closeWrite().catch(() => {});
          await drain(r.conn, 1000);
          return;
        }
        head.push(chunk.slice());
        if (!r.headed) continue;
        chunk = concat(head);
        head.length = 0;
      }
      if (r.upstream === null) {
        await this.#innerReady;
        if (r.closed) return;
        const up = await this.#connectInner(r);
        if (r.closed) return closeQuietly(up);
        r.upstream = up;
        back = this.#pumpBack(r, up);
      }
      await writeAll(r.upstream, chunk);
    }
    // The client finished sending: let the answer drain, then close.
    if (r.upstream !== null) {
      await r.upstream.closeWrite().catch(() => {});
      await back;
    }
  }

  /** Out of descriptors, idle connections give theirs to one with a request to relay. */
  async #connectInner(r: Relay): Promise<Deno.Conn> {
    for (let attempt = 1;; attempt++) {
      try {
        return await Deno.connect({
          transport: "unix",
          path: this.opts.socketPath,
        });
      } catch (e) {
        if (attempt === 3 || r.closed) throw e;
        this.#warnOutOfFds(e);
        this.#shed(2, r);
        await sleep(10);
      }
    }
  }

  /** Closes up to `n` idle connections (never `keep`) so descriptors free up. */
  #shed(n: number, keep?: Relay): void {
    for (let i = 0; i < n; i++) {
      const victim = this.#victim(0, keep);
      if (victim === null) return;
      this.#evict(victim);
    }
  }

  /** Logs running out of descriptors at most once per 10 s. */
  #warnOutOfFds(e: unknown): void {
    const now = Date.now();
    if (now - this.#warnedAt < 10_000) return;
    this.#warnedAt = now;
    this.opts.log.warn("http out of descriptors; shedding idle connections", {
      error: (e as Error).message,
      open: this.#relays.size,
      accept_errors: this.stats.acceptErrors,
    });
  }
  #warnedAt = 0;

  async #pumpBack(r: Relay, up: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(CHUNK);
    try {
      for (;;) {
        const n = await up.read(buf);
        if (n === null) break;
        r.active = Date.now();
        await writeAll(r.conn, buf.subarray(0, n));
      }
    } catch { /* either side went away */ }
    this.#close(r);
  }

  #close(r: Relay): void {
    if (r.closed) return;
    r.closed = true;
    clearTimeout(r.timer);
    closeQuietly(r.conn);
    if (r.upstream !== null) closeQuietly(r.upstream);
    this.#relays.delete(r);
    this.stats.open = this.#relays.size;
  }
}

const HEAD_TOO_LARGE = new TextEncoder().encode(
  "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
);
