/**
 * The node's HTTP surface over TLS in secure mode. `Deno.serve` cannot ask
 * for client certificates, so this is `node:https` with `requestCert`,
 * bridged to the same fetch-style handler; whether the caller showed a
 * certificate signed by the cluster CA is handed to the handler.
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { signedBy } from "./ca.ts";
import { x509 } from "./x509.ts";
import { type FrontOptions, HttpFront } from "../shell/http_front.ts";
import type { InnerServer } from "../shell/http_front_io.ts";

/** What the TLS layer says about the caller. */
export interface Peer {
  /** True when the caller showed a certificate signed by the cluster CA. */
  authorized: boolean;
  /** The certificate's CN, when authorized. */
  cn: string | null;
}

/** A listening server, shaped like the part of `Deno.HttpServer` main.ts uses. */
export interface HttpsServer {
  addr: { port: number };
  shutdown(): Promise<void>;
}

/**
 * Serves `handler` over TLS with client-certificate checks against `ca`.
 * `node:https` listens on `socketPath` behind the node's front door in
 * passthrough mode (the TLS is ended here, so the relay reads no bytes): on
 * its own TCP port it stopped accepting for good after one EMFILE (a flood
 * of idle connections, measured with Deno 2.9), `maxConnections` or not.
 */
export async function serveHttps(
  opts: {
    hostname: string;
    port: number;
    cert: string;
    key: string;
    ca: string;
    socketPath: string;
    log: FrontOptions["log"];
    /**
     * Ask callers for a certificate; the join listener does not (a joiner
     * has none yet). @default true
     */
    clientCerts?: boolean;
  },
  handler: (req: Request, peer: Peer) => Response | Promise<Response>,
): Promise<HttpsServer> {
  // node:tls would load NODE_EXTRA_CA_CERTS, which needs all of --allow-sys;
  // callers are checked against the cluster CA alone.
  Deno.env.delete("NODE_EXTRA_CA_CERTS");
  const front = await HttpFront.relay({
    hostname: opts.hostname,
    port: opts.port,
    socketPath: opts.socketPath,
    passthrough: true,
    log: opts.log,
  }, () => listenInner(opts, handler));
  return { addr: { port: front.addr.port }, shutdown: () => front.shutdown() };
}

/** The `node:https` server on the front's Unix socket (0600). */
async function listenInner(
  opts: {
    hostname: string;
    cert: string;
    key: string;
    ca: string;
    socketPath: string;
    clientCerts?: boolean;
  },
  handler: (req: Request, peer: Peer) => Response | Promise<Response>,
): Promise<InnerServer> {
  const server = https.createServer({
    cert: opts.cert,
    key: opts.key,
    ca: [opts.ca],
    requestCert: opts.clientCerts ?? true,
    // Callers without a certificate still reach the read-only pages; the
    // handler refuses them everything else (the check is peerOf's).
    rejectUnauthorized: false,
  }, (req, res) => {
    bridge(req, res, opts.hostname, opts.ca, handler).catch(() =>
      res.destroy()
    );
  });
  await Deno.remove(opts.socketPath).catch(() => {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.socketPath, () => resolve());
  });
  await Deno.chmod(opts.socketPath, 0o600);
  const finished = Promise.withResolvers<void>();
  server.on("close", () => finished.resolve());
  return {
    finished: finished.promise,
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeAllConnections?: () => void })
          .closeAllConnections?.();
      }),
  };
}

/** Verdicts per connection: a certificate is checked once per TLS session. */
const verdicts = new WeakMap<TLSSocket, Promise<Peer>>();

/**
 * Who the caller is, by our own check of the certificate it presented
 * against the cluster CA. Not `socket.authorized`: under Deno that flag turns
 * true for later requests on a connection whose certificate another CA
 * signed (seen with Deno 2.9), so it is never consulted.
 */
function peerOf(sock: TLSSocket, caPem: string): Promise<Peer> {
  const known = verdicts.get(sock);
  if (known) return known;
  let raw: Uint8Array | undefined;
  try {
    raw = sock.getPeerCertificate()?.raw;
  } catch { /* none */ }
  if (!raw || raw.length === 0) {
    return Promise.resolve({ authorized: false, cn: null }); // not cached: none shown (yet)
  }
  const der = new Uint8Array(raw);
  const verdict = signedBy(der, caPem).then((ok): Peer => {
    if (!ok) return { authorized: false, cn: null };
    const cn = new x509.X509Certificate(der).subjectName.getField("CN")[0];
    return { authorized: true, cn: cn ?? null };
  });
  verdicts.set(sock, verdict);
  return verdict;
}

async function bridge(
  req: IncomingMessage,
  res: ServerResponse,
  host: string,
  ca: string,
  handler: (req: Request, peer: Peer) => Response | Promise<Response>,
): Promise<void> {
  const peer = await peerOf(req.socket as TLSSocket, ca);
  const ac = new AbortController();
  res.on("close", () => ac.abort());
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const body = hasBody
    ? new ReadableStream<Uint8Array>({
      start(ctrl) {
        req.on("data", (c: Uint8Array) => ctrl.enqueue(new Uint8Array(c)));
        req.on("end", () => ctrl.close());
        req.on("error", (e) => ctrl.error(e));
      },
    })
    : null;
  // `req.url` is the request target as sent: routing on the raw target stays exact.
  const request = new Request(`https://${hostForUrl(host)}${req.url ?? "/"}`, {
    method: req.method,
    headers,
    body,
    signal: ac.signal,
    // @ts-ignore: Deno needs duplex for a streamed request body
    duplex: "half",
  });
  const response = await handler(request, peer);
  const out: Record<string, string[]> = {};
  response.headers.forEach((v, k) => (out[k] ??= []).push(v));
  res.writeHead(response.status, out);
  if (response.body === null || req.method === "HEAD") {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  ac.signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await new Promise<void>((r) => {
          res.once("drain", r);
          res.once("close", r);
        });
      }
    }
  } catch { /* the caller went away */ }
  res.end();
}

function hostForUrl(h: string): string {
  return h.includes(":") && !h.startsWith("[") ? `[${h}]` : h;
}
