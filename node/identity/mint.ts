/**
 * `token mint` on the node (SPEC §10): only when a direct etcd read at mint
 * time says this node is `cluster_admin`, and only here, where the CA key is.
 */
import { capabilityError } from "../caps.ts";
import { runTxn } from "../shell/etcd_io.ts";
import { loadCa } from "./ca.ts";
import { adminGuard, isAdmin } from "./admin.ts";
import type { IdentityDeps } from "./deps.ts";
import { IdentityError } from "./errors.ts";
import { readKey } from "./kv.ts";
import { CaRecord, type JoinTokenRecord, MAX_TOKEN_TTL_S } from "./records.ts";
import { signToken } from "./token.ts";
import { sha256Hex } from "./x509.ts";

/** Mints one token; refusals throw {@linkcode IdentityError}. */
export async function mintToken(
  d: IdentityDeps,
  capHint: Record<string, string>,
  ttlS: number,
  now = Date.now(),
): Promise<
  {
    token: string;
    token_id_sha256: string;
    expires_at: number;
    /** The revision that wrote the token record: a revoke compares on it. */
    revision: number;
  }
> {
  if (!Number.isInteger(ttlS) || ttlS < 2 || ttlS > MAX_TOKEN_TTL_S) {
    throw new IdentityError(
      "InvalidArgument",
      `ttl must be whole seconds from 2 to ${MAX_TOKEN_TTL_S}: got ${ttlS}`,
    );
  }
  for (const [k, v] of Object.entries(capHint)) {
    if (k === "cluster_admin") {
      throw new IdentityError(
        "InvalidArgument",
        "caps: cluster_admin cannot be given by a token (cluster admin grant does that)",
      );
    }
    const bad = capabilityError(k, v);
    if (bad !== null) {
      throw new IdentityError("InvalidArgument", `caps: ${bad}`);
    }
  }
  // The gate: a direct read now, never the node's own view of itself; the
  // grant as read before it is compared when the token is written.
  const authority = await adminGuard(d.client, d.keys, d.nodeId);
  if (!(await isAdmin(d.client, d.keys, d.nodeId))) {
    const reason = `node ${d.nodeId} is not cluster_admin`;
    const payload = { node_id: d.nodeId, reason };
    if (d.emitMintDenied) d.emitMintDenied(payload);
    else d.log.info("event", { event: "cluster.mint_denied", ...payload });
    throw new IdentityError("PermissionDenied", `PermissionDenied: ${reason}`);
  }
  const ca = await loadCa(d.dataDir);
  if (ca === null) {
    throw new IdentityError(
      "NoCaKey",
      `node ${d.nodeId} is cluster_admin but does not hold the CA key: mint on the node that ran cluster init`,
    );
  }
  const rec = await readKey(d.client, d.keys.ca(), CaRecord);
  if (rec?.value?.fingerprint !== ca.fingerprint) {
    throw new IdentityError(
      "NotInitialized",
      `the CA key in ${d.dataDir}/ca is not this cluster's (the record at ${d.keys.ca()} ${
        rec === null ? "is absent" : "names another fingerprint"
      })`,
    );
  }
  const minted = await signToken(ca, capHint, ttlS, now);
  const hash = await sha256Hex(minted.claims.token_id);
  const key = d.keys.joinToken(hash);
  const record: JoinTokenRecord = {
    cap_hint: capHint,
    expires_at: minted.claims.exp * 1000,
    minted_by: d.nodeId,
  };
  // The record dies with its lease: an unused token leaves nothing behind.
  const lease = await d.client.lease(ttlS, { autoKeepAlive: false }).grant();
  const res = await runTxn(
    d.client,
    [
      { key, target: "version", equals: 0 },
      authority,
    ],
    [{ op: "put", key, value: JSON.stringify(record), lease }],
    5000,
    [
      authority.key,
    ],
  );
  if (!res.ok) {
    await d.client.leaseClient.leaseRevoke({ ID: lease }).catch(() => {});
    if ((res.reads?.[0]?.kv?.mod_revision ?? 0) !== authority.equals) {
      throw new IdentityError(
        "PermissionDenied",
        `PermissionDenied: node ${d.nodeId} stopped being cluster_admin while minting`,
      );
    }
    throw new Error(`token id collision at ${key}: mint again`);
  }
  d.log.info("join token minted", {
    token_id_sha256: hash,
    cap_hint: capHint,
    expires_at: record.expires_at,
  });
  return {
    token: minted.token,
    token_id_sha256: hash,
    expires_at: record.expires_at,
    revision: res.revision,
  };
}
