/**
 * The admin gate (SPEC §2, §10): who is `cluster_admin`. Only `cluster init`
 * and `cluster admin grant|revoke` write it, each as one transaction over the
 * grant record `/boi/cluster/admins/{id}` and the node's caps record, so a
 * live node's caps show the flag at once and a restarted node reads it back.
 */
import type { Etcd3 } from "etcd3";
import { runTxn } from "../shell/etcd_io.ts";
import type { Compare, Op } from "../core/effects.ts";
import type { Keys } from "../keys.ts";
import { CapsRecord } from "../schema.ts";
import { IdentityError } from "./errors.ts";
import { listKeys, readKey } from "./kv.ts";
import {
  AdminGrant,
  CaRecord,
  ClusterVersion,
  DATA_FORMAT,
} from "./records.ts";
import { VERSION } from "../version.ts";

/** Transaction retries when the node republishes its caps meanwhile. */
const CAS_TRIES = 10;

/** True when a direct etcd read of `nodeId`'s caps says `cluster_admin: "true"`. */
export async function isAdmin(
  client: Etcd3,
  keys: Keys,
  nodeId: string,
): Promise<boolean> {
  const caps = await readKey(client, keys.caps(nodeId), CapsRecord);
  return caps?.value?.static.cluster_admin === "true";
}

/** Throws PermissionDenied unless `nodeId` is admin by a direct read. */
export async function requireAdmin(
  client: Etcd3,
  keys: Keys,
  nodeId: string,
  what: string,
): Promise<void> {
  if (!(await isAdmin(client, keys, nodeId))) {
    throw new IdentityError(
      "PermissionDenied",
      `PermissionDenied: node ${nodeId} is not cluster_admin, so it may not ${what} (cluster admin grant ${nodeId} on an admin node)`,
    );
  }
}

/**
 * The compare that keeps `nodeId`'s authority until commit: its grant record
 * as read now (the admin path deletes or writes it in the transaction that
 * changes the caps flag), so a write made on an admin's behalf (a token
 * minted, a join admitted) fails if it was revoked in between.
 */
export async function adminGuard(
  client: Etcd3,
  keys: Keys,
  nodeId: string,
): Promise<Compare> {
  const g = await readKey(client, keys.admin(nodeId), AdminGrant);
  return { key: keys.admin(nodeId), target: "mod", equals: g?.mod ?? 0 };
}

/** Node ids holding a grant record. */
export async function listAdmins(client: Etcd3, keys: Keys): Promise<string[]> {
  const dir = keys.admin("");
  return (await listKeys(client, dir)).map((k) => k.slice(dir.length)).sort();
}

/**
 * A compare that holds only while some admin other than `target` keeps its
 * grant: two revokes racing for the last two admins both saw the other one,
 * and without it both would commit and leave the cluster with none.
 */
async function anotherAdmin(
  client: Etcd3,
  keys: Keys,
  target: string,
): Promise<Compare> {
  for (const id of await listAdmins(client, keys)) {
    if (id === target) continue;
    const other = await readKey(client, keys.admin(id), AdminGrant);
    if (other !== null) {
      return { key: keys.admin(id), target: "mod", equals: other.mod };
    }
  }
  throw new IdentityError(
    "InvalidArgument",
    `refusing to revoke ${target}: it is the last cluster_admin (grant another node first)`,
  );
}

/**
 * The compares and ops that set (or clear) `nodeId`'s admin flag, guarded by
 * the caps record's current mod revision; `extra` joins the same transaction
 * (the CA record of `cluster init`).
 */
async function adminTxn(
  client: Etcd3,
  keys: Keys,
  nodeId: string,
  grant: AdminGrant | null,
  extra: { compare: Compare[]; success: Op[] },
): Promise<boolean> {
  const caps = await readKey(client, keys.caps(nodeId), CapsRecord);
  const compare: Compare[] = [...extra.compare];
  const success: Op[] = [...extra.success];
  success.push(
    grant === null
      ? { op: "delete", key: keys.admin(nodeId) }
      : { op: "put", key: keys.admin(nodeId), value: JSON.stringify(grant) },
  );
  if (caps === null) {
    // Not live: the grant record alone; the node publishes it when it registers.
    compare.push({ key: keys.caps(nodeId), target: "version", equals: 0 });
  } else {
    compare.push({ key: keys.caps(nodeId), target: "mod", equals: caps.mod });
    if (caps.value !== null) {
      const next: CapsRecord = structuredClone(caps.value);
      if (grant === null) delete next.static.cluster_admin;
      else next.static.cluster_admin = "true";
      success.push({
        op: "put",
        key: keys.caps(nodeId),
        value: JSON.stringify(next),
        lease: caps.lease,
      });
    }
  }
  return (await runTxn(client, compare, success)).ok;
}

/**
 * Grants or revokes `cluster_admin` for `target`, on behalf of `actor`, who
 * must be admin by a direct read. Revoking the last admin is refused.
 */
export async function setAdmin(
  client: Etcd3,
  keys: Keys,
  actor: string,
  target: string,
  admin: boolean,
  now = Date.now(),
): Promise<{ changed: boolean }> {
  for (let i = 0; i < CAS_TRIES; i++) {
    // On every try: a failed compare may mean the actor was revoked meanwhile.
    await requireAdmin(
      client,
      keys,
      actor,
      admin ? "grant cluster_admin" : "revoke cluster_admin",
    );
    const current = await readKey(client, keys.admin(target), AdminGrant);
    const caps = await readKey(client, keys.caps(target), CapsRecord);
    const capsSay = caps?.value?.static.cluster_admin === "true";
    if ((current !== null) === admin && (caps === null || capsSay === admin)) {
      return { changed: false };
    }
    const guard: Compare[] = current === null
      ? [{ key: keys.admin(target), target: "version", equals: 0 }]
      : [{ key: keys.admin(target), target: "mod", equals: current.mod }];
    // The actor's own grant, unchanged at commit: its authority, and (for a
    // revoke of another node) an admin that stays.
    const own = actor === target
      ? null
      : await readKey(client, keys.admin(actor), AdminGrant);
    // Revoked between the check above and this read: the next try's check
    // refuses. (Guarding "another admin" instead let a revoked actor commit.)
    if (actor !== target && own === null) continue;
    if (own !== null) {
      guard.push({ key: keys.admin(actor), target: "mod", equals: own.mod });
    }
    if (!admin && own === null) {
      guard.push(await anotherAdmin(client, keys, target));
    }
    const ok = await adminTxn(
      client,
      keys,
      target,
      admin ? (current?.value ?? { granted_at: now, granted_by: actor }) : null,
      { compare: guard, success: [] },
    );
    if (ok) return { changed: true };
  }
  throw new IdentityError(
    "InvalidArgument",
    `the admin grants or the caps of ${target} kept changing; nothing was written: try again`,
  );
}

/**
 * `cluster init`'s transaction: the CA record (compare `version == 0`), the
 * cluster's data format record, the grant and the caps flag of `nodeId`, all
 * or nothing. False when a CA record
 * exists (the caller reports it); retried while only the caps moved.
 */
export async function commitInit(
  client: Etcd3,
  keys: Keys,
  nodeId: string,
  caRecordJson: string,
  now = Date.now(),
): Promise<boolean> {
  for (let i = 0; i < CAS_TRIES; i++) {
    // The data format record goes with the CA; a readable one already there
    // (left by an init whose CA was deleted) is kept, an unreadable one
    // rewritten, both under their mod compare.
    const version = await readKey(
      client,
      keys.clusterVersion(),
      ClusterVersion,
    );
    const write = version === null || version.value === null;
    const record: ClusterVersion = {
      format: DATA_FORMAT,
      boi: VERSION,
      written_by: nodeId,
      written_at: now,
    };
    const ok = await adminTxn(client, keys, nodeId, {
      granted_at: now,
      granted_by: nodeId,
    }, {
      compare: [
        { key: keys.ca(), target: "version", equals: 0 },
        version === null
          ? { key: keys.clusterVersion(), target: "version", equals: 0 }
          : { key: keys.clusterVersion(), target: "mod", equals: version.mod },
      ],
      success: [
        { op: "put", key: keys.ca(), value: caRecordJson },
        ...(write
          ? [{
            op: "put" as const,
            key: keys.clusterVersion(),
            value: JSON.stringify(record),
          }]
          : []),
      ],
    });
    if (ok) return true;
    if ((await readKey(client, keys.ca(), CaRecord)) !== null) return false;
  }
  throw new IdentityError(
    "InvalidArgument",
    `the caps of ${nodeId} kept changing; nothing was written: try again`,
  );
}
