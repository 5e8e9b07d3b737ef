/**
 * A TCP proxy owned by the test, for partitions (SPEC §14): point a node's
 * `BOI_ETCD_ENDPOINTS` at the proxy, then cut and restore its path to etcd
 * while the node keeps running.
 */
/** How a cut looks to the client. */
export type CutMode =
  /** Bytes vanish both ways and new connections are accepted but never answered: a network partition. */
  | "blackhole"
  /** Every connection is closed and new ones are closed at once: a refused peer. */
  | "reset";

interface Pair {
  client: Deno.TcpConn;
  upstream: Deno.TcpConn | null;
}

/** A loopback TCP proxy to one target; see {@linkcode startProxy}. */
export class TcpProxy implements AsyncDisposable {
  /** `http://127.0.0.1:<port>`: use it as an etcd endpoint. */
  readonly endpoint: string;
  readonly port: number;
  /** `host:port` the proxy forwards to. */
  readonly target: string;
  #listener: Deno.TcpListener;
  #state: "open" | CutMode = "open";
  #pairs = new Set<Pair>();
  #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;

  /** @internal Use `startProxy`. */
  constructor(listener: Deno.TcpListener, target: string) {
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.endpoint = `http://127.0.0.1:${this.port}`;
    this.target = target;
    this.#accepting = this.#acceptLoop();
  }

  /** `open`, `blackhole` or `reset`. */
  get state(): "open" | CutMode {
    return this.#state;
  }

  /** Connections currently held (forwarded or blackholed). */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Cuts the path: existing and new connections stop carrying bytes. */
  cut(mode: CutMode = "blackhole"): void {
    this.#state = mode;
    if (mode === "reset") this.#closeAll();
  }

  /**
   * Heals the path. Connections held during a blackhole are closed (as a
   * keepalive would have found them dead), so clients reconnect through the
   * open proxy.
   */
  restore(): void {
    if (this.#state === "blackhole") this.#closeAll();
    this.#state = "open";
  }

  #closeAll(): void {
    for (const p of this.#pairs) closePair(p);
    this.#pairs.clear();
  }

  async #acceptLoop(): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // listener closed
      }
      if (this.#state === "reset") {
        conn.close();
        continue;
      }
      const pair: Pair = { client: conn, upstream: null };
      this.#pairs.add(pair);
      this.#track(this.#serve(pair));
    }
  }

  #track(p: Promise<void>): void {
    this.#tasks.add(p);
    p.finally(() => this.#tasks.delete(p));
  }

  async #serve(pair: Pair): Promise<void> {
    if (this.#state === "open") {
      const [hostname, port] = this.target.split(":");
      try {
        pair.upstream = await Deno.connect({ hostname, port: Number(port) });
      } catch {
        this.#pairs.delete(pair);
        closePair(pair);
        return;
      }
      if (!this.#pairs.has(pair)) { // reset while connecting
        closePair(pair);
        return;
      }
      await Promise.all([
        this.#pump(pair, pair.client, pair.upstream),
        this.#pump(pair, pair.upstream, pair.client),
      ]);
    } else {
      await this.#pump(pair, pair.client, null); // blackholed from the start
    }
    this.#pairs.delete(pair);
    closePair(pair);
  }

  /** Copies src to dst while open; discards while cut. Ends when either side closes. */
  async #pump(
    pair: Pair,
    src: Deno.TcpConn,
    dst: Deno.TcpConn | null,
  ): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await src.read(buf);
        if (n === null) break;
        if (this.#state !== "open" || dst === null) continue;
        let off = 0;
        while (off < n) off += await dst.write(buf.subarray(off, n));
      }
    } catch { /* closed under us */ }
    this.#pairs.delete(pair);
    closePair(pair);
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    this.#closeAll();
    await this.#accepting;
    await Promise.all([...this.#tasks]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function closePair(p: Pair): void {
  for (const c of [p.client, p.upstream]) {
    try {
      c?.close();
    } catch { /* already closed */ }
  }
}

/** Where a proxy forwards: an `http://host:port` endpoint, `host:port`, or a handle with `endpoint`. */
export type ProxyTarget = string | { endpoint: string };

/**
 * Starts a proxy on a free loopback port forwarding to `target` (for an etcd
 * cluster, one proxy per member). Use with `await using`; the node under test
 * gets `proxy.endpoint` as its etcd endpoint.
 */
export function startProxy(target: ProxyTarget): TcpProxy {
  const text = typeof target === "string" ? target : target.endpoint;
  if (text.includes(",")) {
    throw new Error(
      `a proxy forwards to one endpoint: got ${
        JSON.stringify(text)
      } (start one per member)`,
    );
  }
  const hostPort = text.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
  if (!/^[^:]+:\d+$/.test(hostPort)) {
    throw new Error(
      `proxy target must be host:port or http://host:port: got ${
        JSON.stringify(text)
      }`,
    );
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return new TcpProxy(listener, hostPort);
}
