/**
 * The cluster CA (SPEC §10): an ECDSA P-256 key that lives only in
 * `<data_dir>/ca/ca.key` (0600) on the admin node, and the certificates it
 * signs for nodes, etcd and the CLI.
 */
import {
  EC_ALG,
  fingerprint,
  generateKeyPair,
  importPrivateKey,
  privateKeyPem,
  randomSerial,
  SIGN_ALG,
  x509,
} from "./x509.ts";

/** The CA as the admin node holds it. */
export interface Ca {
  cert_pem: string;
  /** SHA-256 of the certificate's DER, hex. */
  fingerprint: string;
  key: CryptoKey;
}

/** Validity of the CA certificate. @default 10 years */
const CA_DAYS = 3650;
/** Validity of node, etcd and CLI certificates. @default 1 year */
const LEAF_DAYS = 365;
const DAY_MS = 86_400_000;

/** Where a node keeps its CA, if it is the one that created it. */
export function caPaths(
  dataDir: string,
): { dir: string; key: string; cert: string } {
  return {
    dir: `${dataDir}/ca`,
    key: `${dataDir}/ca/ca.key`,
    cert: `${dataDir}/ca/ca.crt`,
  };
}

/** A new self-signed CA (in memory; {@linkcode saveCa} writes it). */
export async function createCa(name: string, now = Date.now()): Promise<{
  ca: Ca;
  key_pem: string;
}> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${cnSafe(name)},O=boi`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + CA_DAYS * DAY_MS),
    signingAlgorithm: SIGN_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const cert_pem = cert.toString("pem");
  return {
    ca: {
      cert_pem,
      fingerprint: await fingerprint(cert_pem),
      key: keys.privateKey,
    },
    key_pem: await privateKeyPem(keys.privateKey),
  };
}

/**
 * Writes the CA key as `ca.key.pending` (0600, created exclusively) before
 * the CA record is committed; `commit` renames it into place with the
 * certificate beside it, `abort` removes it. An existing `ca.key` is never
 * overwritten.
 */
export async function stageCaKey(dataDir: string, keyPem: string): Promise<{
  commit(certPem: string): Promise<void>;
  abort(): Promise<void>;
}> {
  const p = caPaths(dataDir);
  await Deno.mkdir(p.dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(p.dir, 0o700);
  try {
    await Deno.lstat(p.key);
    throw new Error(
      `${p.key} exists: this node already holds a CA key (move it away to create a new cluster)`,
    );
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const pending = `${p.key}.pending`;
  await Deno.remove(pending).catch(() => {});
  await Deno.writeTextFile(pending, keyPem, { mode: 0o600, createNew: true });
  await Deno.chmod(pending, 0o600);
  return {
    commit: async (certPem) => {
      await Deno.writeTextFile(p.cert, certPem, { mode: 0o644 });
      await Deno.rename(pending, p.key);
    },
    abort: async () => {
      await Deno.remove(pending).catch(() => {});
    },
  };
}

/** The CA kept by this node, or null when it has none. */
export async function loadCa(dataDir: string): Promise<Ca | null> {
  const p = caPaths(dataDir);
  let keyPem: string, certPem: string;
  try {
    [keyPem, certPem] = await Promise.all([
      Deno.readTextFile(p.key),
      Deno.readTextFile(p.cert),
    ]);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return {
    cert_pem: certPem,
    fingerprint: await fingerprint(certPem),
    key: await importPrivateKey(keyPem),
  };
}

/** What a signed certificate is for. */
export interface LeafRequest {
  /** Subject CN: the node id, "etcd" or "cli". */
  cn: string;
  dns: string[];
  ips?: string[];
  publicKey: CryptoKey;
  server: boolean;
  client: boolean;
  /** @default 365 days */
  days?: number;
}

/** Signs a leaf certificate with the CA key; returns its PEM. */
export async function issueCert(
  ca: Ca,
  req: LeafRequest,
  now = Date.now(),
): Promise<string> {
  const caCert = new x509.X509Certificate(ca.cert_pem);
  const usages: string[] = [];
  if (req.server) usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (req.client) usages.push(x509.ExtendedKeyUsage.clientAuth);
  const names: x509.JsonGeneralName[] = [
    ...req.dns.map((value) => ({ type: "dns" as const, value })),
    ...(req.ips ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${cnSafe(req.cn)},O=boi`,
    issuer: caCert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (req.days ?? LEAF_DAYS) * DAY_MS),
    signingAlgorithm: SIGN_ALG,
    publicKey: req.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(usages, false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return cert.toString("pem");
}

/** A key pair and a certificate for it, both PEM (etcd server, CLI client). */
export async function issueKeyAndCert(
  ca: Ca,
  req: Omit<LeafRequest, "publicKey">,
): Promise<{ cert_pem: string; key_pem: string }> {
  const keys = await generateKeyPair();
  return {
    cert_pem: await issueCert(ca, { ...req, publicKey: keys.publicKey }),
    key_pem: await privateKeyPem(keys.privateKey),
  };
}

/** True when `certPem` was signed by this CA's key and is valid now. */
export async function signedBy(
  certPem: string | Uint8Array<ArrayBuffer>,
  caPem: string,
  now = Date.now(),
): Promise<boolean> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch {
    return false;
  }
  const caCert = new x509.X509Certificate(caPem);
  if (cert.notBefore.getTime() > now || cert.notAfter.getTime() < now) {
    return false;
  }
  try {
    return await cert.verify({ publicKey: caCert, signatureOnly: true });
  } catch {
    return false;
  }
}

/** The CA certificate's public key for verifying join tokens. */
export async function caPublicKey(caPem: string): Promise<CryptoKey> {
  const cert = new x509.X509Certificate(caPem);
  return await cert.publicKey.export(EC_ALG, ["verify"]);
}

function cnSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 64);
}
