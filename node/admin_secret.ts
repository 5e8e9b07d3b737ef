/**
 * The per-cluster admin secret (issue 11, open mode). Every mutating HTTP
 * request to a node (`POST /internal/...`) must carry it in
 * `x-boi-admin-secret`; the first node creates it in etcd
 * (`<prefix>cluster/admin_secret`, put only while its version is 0) and the
 * CLI reads it from there. A web page cannot read it and cannot send a
 * custom header cross-origin without a CORS preflight, which nodes never
 * grant; on top of that, requests a browser marks as cross-site are refused
 * outright. Secure mode will add mutual TLS in `refuseMutating`, the one
 * place that decides.
 */
import { z } from "zod";

/** The request header that carries the secret. */
export const ADMIN_SECRET_HEADER = "x-boi-admin-secret";

/** 32 random bytes, base64url without padding. */
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** `<prefix>cluster/admin_secret`: written once, by the first node; no lease. */
export const AdminSecretRecord = z.object({
  secret: z.string().regex(SECRET_PATTERN),
  created_at: z.number().int(),
  created_by: z.string(),
});
export type AdminSecretRecord = z.infer<typeof AdminSecretRecord>;

/** A fresh secret. */
export function newAdminSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-")
    .replace(/\//g, "_").replace(/=+$/, "");
}

/** Whether `text` looks like a secret (the 0600 file the node keeps may be stale or hand-edited). */
export function isAdminSecret(text: string): boolean {
  return SECRET_PATTERN.test(text);
}

/** Compares in time independent of where the strings differ. */
export function secretsEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}

/**
 * The one check of every mutating request: why it is refused (status and a
 * one-line reason), or null to let it through. `secret` is null until the
 * node has loaded it.
 */
export function refuseMutating(
  headers: Headers,
  secret: string | null,
): { status: number; error: string } | null {
  const site = headers.get("sec-fetch-site");
  if ((site !== null && site !== "none") || headers.has("origin")) {
    return {
      status: 403,
      error: `browser requests may not change anything on a node (origin ${
        JSON.stringify(headers.get("origin") ?? site)
      })`,
    };
  }
  if (secret === null) {
    return {
      status: 503,
      error:
        "the admin secret is not loaded yet (etcd has not answered since the node started)",
    };
  }
  const sent = headers.get(ADMIN_SECRET_HEADER);
  if (sent === null || !secretsEqual(sent, secret)) {
    return {
      status: 403,
      error: `${
        sent === null ? "missing" : "wrong"
      } ${ADMIN_SECRET_HEADER}: use the boi CLI, which reads the cluster's admin secret from etcd`,
    };
  }
  return null;
}
