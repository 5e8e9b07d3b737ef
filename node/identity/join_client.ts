/**
 * The joining node's side of SPEC §10: with `BOI_JOIN_TOKEN` and
 * `BOI_BOOTSTRAP_URL`, get a certificate from an admin node and keep it.
 *
 * No trust on first use: the CA certificate fetched from the server must have
 * the fingerprint the token carries before the token is sent, and the token
 * then goes only over a TLS connection verified against that CA.
 */
import https from "node:https";
import { signedBy } from "./ca.ts";
import { fetchError } from "../fetch_error.ts";
import { type CertNames, sanExtension } from "./cert_names.ts";
import {
  identityPaths,
  readIfExists,
  writePublic,
  writeSecret,
} from "./files.ts";
import { JoinAnswer } from "./records.ts";
import { peekClaims } from "./token.ts";
import {
  fingerprint,
  generateKeyPair,
  privateKeyPem,
  SIGN_ALG,
  x509,
} from "./x509.ts";

/** A node's certificate, as kept in `<data_dir>/identity`. */
export interface NodeIdentity {
  cert_pem: string;
  key_pem: string;
  ca_pem: string;
  /** From the join answer; null on the admin node (it uses its own configuration). */
  etcd_endpoints: string[] | null;
}

/** How long a join may take end to end. @default 15000 */
const JOIN_TIMEOUT_MS = 15_000;

/** The stored identity, or null when this node never joined. */
export async function loadIdentity(
  dataDir: string,
): Promise<NodeIdentity | null> {
  const p = identityPaths(dataDir);
  const [cert, key, ca, join] = await Promise.all([
    readIfExists(p.cert),
    readIfExists(p.key),
    readIfExists(p.ca),
    readIfExists(p.join),
  ]);
  if (cert === null || key === null || ca === null) return null;
  let endpoints: string[] | null = null;
  if (join !== null) {
    const parsed = JSON.parse(join) as { etcd_endpoints?: string[] };
    endpoints = parsed.etcd_endpoints ?? null;
  }
  return {
    cert_pem: cert,
    key_pem: key,
    ca_pem: ca,
    etcd_endpoints: endpoints,
  };
}

/** Joins through `bootstrapUrl` with `token`; stores and returns the identity. Throws one-line reasons. */
export async function joinCluster(opts: {
  token: string;
  bootstrapUrl: string;
  nodeId: string;
  caps: Record<string, string>;
  dataDir: string;
  /** What the certificate should name besides the node id (cert_names.ts). */
  names: CertNames;
}): Promise<NodeIdentity> {
  const claims = peekClaims(opts.token);
  if (typeof claims === "string") throw new Error(`BOI_JOIN_TOKEN: ${claims}`);
  let base: URL;
  try {
    base = new URL(opts.bootstrapUrl);
    if (base.protocol !== "https:") throw new Error("not https");
  } catch {
    throw new Error(
      `BOI_BOOTSTRAP_URL must be https://<host>:<port>: got ${
        JSON.stringify(opts.bootstrapUrl)
      }`,
    );
  }
  const caPem = await fetchCaUnverified(new URL("/v1/ca", base));
  const seen = await fingerprint(caPem).catch(() => "(not a certificate)");
  if (seen !== claims.ca_fingerprint) {
    throw new Error(
      `${base.origin} presents CA fingerprint ${seen}, the token expects ${claims.ca_fingerprint}: not sending the token`,
    );
  }
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${opts.nodeId}`,
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [sanExtension(opts.names)],
  });
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  let res: Response;
  try {
    res = await fetch(new URL("/v1/join", base), {
      method: "POST",
      client,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        token: opts.token,
        node_id: opts.nodeId,
        caps: opts.caps,
        csr: csr.toString("pem"),
      }),
      signal: AbortSignal.timeout(JOIN_TIMEOUT_MS),
    });
  } catch (e) {
    client.close();
    throw new Error(`join at ${base.origin} failed: ${fetchError(e)}`);
  }
  const text = await res.text();
  client.close();
  if (!res.ok) {
    let msg = text.trim();
    try {
      msg = (JSON.parse(text) as { error?: string }).error ?? msg;
    } catch { /* not JSON */ }
    throw new Error(
      `${msg.slice(0, 300)} (HTTP ${res.status} from ${base.origin})`,
    );
  }
  const answer = JoinAnswer.parse(JSON.parse(text));
  if ((await fingerprint(answer.ca_pem)) !== claims.ca_fingerprint) {
    throw new Error(`${base.origin} answered with another CA than the token's`);
  }
  if (!(await signedBy(answer.node_cert, answer.ca_pem))) {
    throw new Error(
      `${base.origin} answered with a certificate the CA did not sign`,
    );
  }
  const cert = new x509.X509Certificate(answer.node_cert);
  const mine = new Uint8Array(
    await crypto.subtle.exportKey("spki", keys.publicKey),
  );
  if (!equalBytes(new Uint8Array(cert.publicKey.rawData), mine)) {
    throw new Error(
      `${base.origin} answered with a certificate for another key`,
    );
  }
  const identity: NodeIdentity = {
    cert_pem: answer.node_cert,
    key_pem: await privateKeyPem(keys.privateKey),
    ca_pem: answer.ca_pem,
    etcd_endpoints: answer.etcd_endpoints,
  };
  const p = identityPaths(opts.dataDir);
  await writeSecret(p.key, identity.key_pem);
  await writePublic(p.ca, identity.ca_pem);
  await writePublic(
    p.join,
    JSON.stringify({
      etcd_endpoints: answer.etcd_endpoints,
      bootstrap_url: base.origin,
      joined_at: Date.now(),
    }) + "\n",
  );
  // Last: a node.crt on disk means the join completed.
  await writePublic(p.cert, identity.cert_pem);
  return identity;
}

/**
 * `GET /v1/ca` without verifying the server: what comes back is trusted only
 * after its fingerprint matches the token's.
 */
function fetchCaUnverified(url: URL): Promise<string> {
  // node:tls would load NODE_EXTRA_CA_CERTS, asking for a permission a node
  // does not get (all of --allow-sys); extra roots mean nothing here.
  Deno.env.delete("NODE_EXTRA_CA_CERTS");
  return new Promise((resolve, reject) => {
    const req = https.get(url, {
      rejectUnauthorized: false,
      timeout: JOIN_TIMEOUT_MS,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
        if (body.length > 64 * 1024) {
          req.destroy(new Error("CA answer too large"));
        }
      });
      res.on(
        "end",
        () =>
          res.statusCode === 200
            ? resolve(body)
            : reject(new Error(`GET ${url} answered HTTP ${res.statusCode}`)),
      );
    });
    req.on(
      "timeout",
      () => req.destroy(new Error(`no answer from ${url.origin}`)),
    );
    req.on(
      "error",
      (e) => reject(new Error(`cannot reach ${url.origin}: ${oneLine(e)}`)),
    );
  });
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
