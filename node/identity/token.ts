/**
 * Join tokens (SPEC §10): ES256 JWTs signed by the CA key with the claims
 * `{token_id, cap_hint, ca_fingerprint, exp}`. Pure apart from WebCrypto:
 * storing and consuming them is the admin node's business (admin_ops.ts).
 */
import { decodeJwt, errors, jwtVerify, SignJWT } from "jose";
import { type Ca, caPublicKey } from "./ca.ts";
import { TokenClaims } from "./records.ts";

/** Token lifetime when `--ttl` is not given (SPEC §10). */
export const DEFAULT_TOKEN_TTL_S = 300;

/** A minted token and what is stored about it. */
export interface MintedToken {
  token: string;
  claims: TokenClaims;
}

/** Signs a new single-use token; `token_id` is 128 random bits. */
export async function signToken(
  ca: Ca,
  capHint: Record<string, string>,
  ttlS: number,
  now = Date.now(),
): Promise<MintedToken> {
  const id = crypto.getRandomValues(new Uint8Array(16));
  const claims: TokenClaims = {
    token_id: [...id].map((b) => b.toString(16).padStart(2, "0")).join(""),
    cap_hint: capHint,
    ca_fingerprint: ca.fingerprint,
    exp: Math.floor(now / 1000) + ttlS,
  };
  const token = await new SignJWT({
    token_id: claims.token_id,
    cap_hint: claims.cap_hint,
    ca_fingerprint: claims.ca_fingerprint,
  })
    .setProtectedHeader({ alg: "ES256", typ: "JWT" })
    .setExpirationTime(claims.exp)
    .sign(ca.key);
  return { token, claims };
}

/** The claims a token carries, unverified: the joiner reads its CA fingerprint from them. */
export function peekClaims(token: string): TokenClaims | string {
  let raw: unknown;
  try {
    raw = decodeJwt(token);
  } catch {
    return "the token is not a JWT";
  }
  const parsed = TokenClaims.safeParse(raw);
  return parsed.success
    ? parsed.data
    : `the token lacks valid claims (${parsed.error.issues[0].path.join(".")})`;
}

/**
 * Verifies signature (ES256 by this CA), expiry and fingerprint; returns the
 * claims, or a one-line reason to refuse.
 */
export async function verifyToken(
  token: string,
  caPem: string,
  fingerprint: string,
  now = Date.now(),
): Promise<TokenClaims | string> {
  const peek = peekClaims(token);
  if (typeof peek === "string") return peek;
  if (peek.ca_fingerprint !== fingerprint) {
    return `the token belongs to another cluster (CA fingerprint ${
      peek.ca_fingerprint.slice(0, 16)
    }…, this cluster's is ${fingerprint.slice(0, 16)}…)`;
  }
  try {
    const { payload } = await jwtVerify(token, await caPublicKey(caPem), {
      algorithms: ["ES256"],
      currentDate: new Date(now),
      clockTolerance: 0,
    });
    const parsed = TokenClaims.safeParse(payload);
    return parsed.success ? parsed.data : "the token lacks valid claims";
  } catch (e) {
    if (e instanceof errors.JWTExpired) {
      return `the token expired at ${new Date(peek.exp * 1000).toISOString()}`;
    }
    if (e instanceof errors.JWSSignatureVerificationFailed) {
      return "the token's signature does not verify against the cluster CA (tampered, or signed by another CA)";
    }
    return `the token is invalid: ${(e as Error).message.split("\n")[0]}`;
  }
}
