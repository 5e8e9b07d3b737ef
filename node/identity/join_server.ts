/**
 * The admin node's TLS listener on `BOI_JOIN_ADDR` (SPEC §10): `POST /v1/join`
 * and `GET /v1/ca`. Its certificate is signed by the CA at start, with SANs
 * `localhost`, `127.0.0.1` and the host name, so a joiner can check it
 * against the CA fingerprint in its token.
 */
import { issueKeyAndCert, loadCa } from "./ca.ts";
import { hostNames, type IdentityDeps } from "./deps.ts";
import { advertisedNames, mergeNames } from "./cert_names.ts";
import { IdentityError } from "./errors.ts";
import { admit } from "./join_service.ts";
import { serveHttps } from "./https_server.ts";

/** Largest join body read. @default 64 KiB */
const MAX_BODY = 64 * 1024;

/** A running join listener. */
export interface JoinServer {
  /** `host:port` it listens on. */
  readonly addr: string;
  close(): Promise<void>;
}

/**
 * Starts listening if this node holds the CA key; null otherwise (only admin
 * nodes listen). A join is still refused if the node is no longer admin.
 */
export async function startJoinServer(
  d: IdentityDeps,
): Promise<JoinServer | null> {
  const ca = await loadCa(d.dataDir);
  if (ca === null) return null;
  // Joiners on other machines dial BOI_JOIN_ADDR's host: named too.
  const names = mergeNames(
    { dns: hostNames([d.nodeId]), ips: ["127.0.0.1"] },
    advertisedNames(d.joinHost, []),
  );
  const tls = await issueKeyAndCert(ca, {
    cn: `${d.nodeId}-join`,
    dns: names.dns,
    ips: names.ips,
    server: true,
    client: false,
  });
  // Behind the node's front door, as the secure HTTPS listener is:
  // Deno.serve's own TLS listener has no connection limit and its accept
  // loop died on EMFILE, so a flood of idle connections (no token needed)
  // ended the admin node, the one holding the CA key. (Deno.listenTls in
  // the front was tried: idle connections then sat in its handshakes,
  // holding descriptors the front can neither see nor evict.)
  const server = await serveHttps({
    hostname: d.joinHost,
    port: d.joinPort,
    cert: tls.cert_pem,
    key: tls.key_pem,
    ca: ca.cert_pem,
    socketPath: `${d.dataDir}/join.sock`,
    log: d.log,
    clientCerts: false,
  }, (req) => handleJoinHttp(req, d, ca.cert_pem));
  const addr = `${d.joinHost}:${server.addr.port}`;
  d.log.info("join listener up", {
    join_addr: addr,
    fingerprint: ca.fingerprint,
  });
  return { addr, close: () => server.shutdown() };
}

async function handleJoinHttp(
  req: Request,
  d: IdentityDeps,
  caPem: string,
): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (path === "/v1/ca" && req.method === "GET") {
    return new Response(caPem, {
      headers: { "content-type": "application/x-pem-file" },
    });
  }
  if (path !== "/v1/join") return json(404, { error: "not found" });
  if (req.method !== "POST") return json(405, { error: "POST only" });
  const text = await readLimited(req, MAX_BODY);
  let body: unknown;
  try {
    body = JSON.parse(text ?? "");
  } catch {
    return json(400, {
      error: text === null
        ? "join refused: body too large"
        : "join refused: body is not JSON",
    });
  }
  try {
    return json(200, await admit(d, body));
  } catch (e) {
    if (e instanceof IdentityError) {
      d.log.warn("join refused", { reason: e.message });
      return json(e.status, { error: e.message, code: e.code });
    }
    d.log.error("join failed", { error: String(e) });
    return json(500, {
      error: `join failed: ${(e as Error).message.split("\n")[0]}`,
    });
  }
}

/** The body as text, or null when it exceeds `max` bytes (join and admin requests are small). */
export async function readLimited(
  req: Request,
  max: number,
): Promise<string | null> {
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of req.body) {
    n += c.length;
    if (n > max) return null;
    chunks.push(c);
  }
  const all = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return new TextDecoder().decode(all);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}
