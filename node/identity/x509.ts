/**
 * WebCrypto + `@peculiar/x509` plumbing shared by the CA, the join server and
 * the joining node: ECDSA P-256 keys, PEM encoding, fingerprints.
 */
import "reflect-metadata"; // @peculiar/x509 uses tsyringe, which needs it loaded first
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(crypto);

export { x509 };

/** The one key algorithm of the cluster (SPEC §10: ECDSA P-256). */
export const EC_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;
/** Signatures over certificates and CSRs. */
export const SIGN_ALG = { name: "ECDSA", hash: "SHA-256" } as const;

/** A fresh extractable key pair (the private key is written to a 0600 file). */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(EC_ALG, true, ["sign", "verify"]);
}

/** PKCS#8 PEM of a private key, as etcd, grpc-js and TLS servers read it. */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
  return pem("PRIVATE KEY", der);
}

/** Imports a PKCS#8 PEM private key for signing. */
export async function importPrivateKey(text: string): Promise<CryptoKey> {
  return await crypto.subtle.importKey(
    "pkcs8",
    pemBody(text, "PRIVATE KEY"),
    EC_ALG,
    true,
    ["sign"],
  );
}

/** Lower-case hex SHA-256 of a certificate's DER: the `ca_fingerprint` of tokens. */
export async function fingerprint(certPem: string): Promise<string> {
  const cert = new x509.X509Certificate(certPem);
  return hex(
    new Uint8Array(await crypto.subtle.digest("SHA-256", cert.rawData)),
  );
}

/** Lower-case hex SHA-256 of a UTF-8 string (token ids are stored by hash). */
export async function sha256Hex(text: string): Promise<string> {
  return hex(
    new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
    ),
  );
}

/** Random serial numbers: positive, 16 bytes. */
export function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  return hex(b);
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function pem(label: string, der: Uint8Array): string {
  let b64 = "";
  for (let i = 0; i < der.length; i += 0x8000) {
    b64 += String.fromCharCode(...der.subarray(i, i + 0x8000));
  }
  const body = btoa(b64).replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

function pemBody(text: string, label: string): Uint8Array<ArrayBuffer> {
  const m = new RegExp(
    `-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`,
  ).exec(text);
  if (!m) throw new Error(`not a PEM ${label}`);
  const bin = atob(m[1].replace(/\s+/g, ""));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
