/**
 * The plumbing under the HTTP front door: the inner `Deno.serve` on a
 * private Unix socket, and the byte-level helpers the relay uses.
 */
/** Read buffer of the relay. */
export const CHUNK = 16 * 1024;

/** What the front relays to: a server on its Unix socket; `finished` rejects if it stops by itself. */
export interface InnerServer {
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** Starts `Deno.serve` on a fresh Unix socket only this user may open. */
export async function serveInner(
  path: string,
  handler: (req: Request) => Response | Promise<Response>,
): Promise<Deno.HttpServer<Deno.UnixAddr>> {
  await Deno.remove(path).catch(() => {});
  const server = Deno.serve({ transport: "unix", path, onListen: () => {} }, (
    req,
  ) => handler(asTcpRequest(req)));
  try {
    await Deno.chmod(path, 0o600);
  } catch (e) {
    await server.shutdown();
    throw e;
  }
  return server;
}

/**
 * The inner server names a Unix request `http+unix://<host>/…`; handlers
 * expect what a TCP server gives (`http://<host>/…`, target kept as sent).
 */
export function asTcpRequest(req: Request): Request {
  const url = req.url;
  if (url.startsWith("http+unix://")) {
    Object.defineProperty(req, "url", {
      value: `http://${url.slice("http+unix://".length)}`,
    });
  }
  return req;
}

export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
): Promise<void> {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
}

/** Reads and drops input until EOF or `ms` pass. */
export async function drain(conn: Deno.Conn, ms: number): Promise<void> {
  const timer = setTimeout(() => closeQuietly(conn), ms);
  const buf = new Uint8Array(CHUNK);
  try {
    while ((await conn.read(buf)) !== null) { /* dropped */ }
  } catch { /* closed by the timer or reset */ }
  clearTimeout(timer);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
