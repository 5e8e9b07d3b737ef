/**
 * Admitting a node (SPEC §10, `POST /v1/join`): every check runs before the
 * one write, the transaction that consumes the token, so a refused join
 * leaves no trace in etcd and two joins with one token cannot both win.
 */
import { capabilityError } from "../caps.ts";
import { runTxn } from "../shell/etcd_io.ts";
import { ID_PATTERN, NodeRecord } from "../schema.ts";
import { adminGuard, requireAdmin } from "./admin.ts";
import { issueCert, loadCa } from "./ca.ts";
import type { IdentityDeps } from "./deps.ts";
import { IdentityError } from "./errors.ts";
import { readKey } from "./kv.ts";
import {
  AdminGrant,
  CaRecord,
  type JoinAnswer,
  JoinRequest,
  JoinTokenRecord,
} from "./records.ts";
import { verifyToken } from "./token.ts";
import { type CertNames, mergeNames, requestedNames } from "./cert_names.ts";
import { EC_ALG, sha256Hex, x509 } from "./x509.ts";

const refuse = (msg: string) =>
  new IdentityError("JoinRefused", `join refused: ${msg}`);

/** Checks a join request and, if all is well, consumes its token and signs the node's certificate. */
export async function admit(
  d: IdentityDeps,
  body: unknown,
  now = Date.now(),
): Promise<JoinAnswer> {
  const p = JoinRequest.safeParse(body);
  if (!p.success) {
    const i = p.error.issues[0];
    throw refuse(`body.${i.path.join(".")}: ${i.message}`);
  }
  const req = p.data;
  if (!ID_PATTERN.test(req.node_id)) {
    throw refuse(
      `node_id must match ${ID_PATTERN.source}: got ${
        JSON.stringify(req.node_id.slice(0, 80))
      }`,
    );
  }
  if (Object.hasOwn(req.caps, "cluster_admin")) {
    throw refuse(
      "caps must not contain cluster_admin (it is granted by cluster admin grant, never requested)",
    );
  }
  for (const [k, v] of Object.entries(req.caps)) {
    const bad = capabilityError(k, v);
    if (bad !== null) throw refuse(`caps: ${bad}`);
  }
  const ca = await loadCa(d.dataDir);
  const rec = await readKey(d.client, d.keys.ca(), CaRecord);
  if (ca === null || rec?.value?.fingerprint !== ca.fingerprint) {
    throw new IdentityError(
      "NoCaKey",
      `join refused: node ${d.nodeId} does not hold this cluster's CA key`,
    );
  }
  const claims = await verifyToken(req.token, ca.cert_pem, ca.fingerprint, now);
  if (typeof claims === "string") throw refuse(claims);
  for (const [k, v] of Object.entries(claims.cap_hint)) {
    if (req.caps[k] !== v) {
      throw refuse(
        `the token is for caps ${k}=${v}; the node declares ${
          req.caps[k] === undefined ? `no ${k}` : `${k}=${req.caps[k]}`
        }`,
      );
    }
  }
  let publicKey: CryptoKey;
  let asked: CertNames;
  try {
    const csr = new x509.Pkcs10CertificateRequest(req.csr);
    if (!(await csr.verify())) throw new Error("its signature does not verify");
    const cn = csr.subjectName.getField("CN")[0];
    if (cn !== req.node_id) {
      throw new Error(
        `its CN is ${JSON.stringify(cn)}, not the node id ${req.node_id}`,
      );
    }
    publicKey = await csr.publicKey.export(EC_ALG, ["verify"]);
    const names = requestedNames(csr);
    if (typeof names === "string") throw new Error(names);
    asked = names;
  } catch (e) {
    throw refuse(`bad csr: ${(e as Error).message.split("\n")[0]}`);
  }
  // Read before the check: a revoke after it fails the consume below.
  const authority = await adminGuard(d.client, d.keys, d.nodeId);
  try {
    await requireAdmin(d.client, d.keys, d.nodeId, "admit nodes");
  } catch (e) {
    throw refuse((e as Error).message);
  }
  if (
    (await readKey(d.client, d.keys.node(req.node_id), NodeRecord)) !== null
  ) {
    throw refuse(`node id ${req.node_id} is registered by a live node`);
  }
  // A grant outlives its node: joining under the id of an admin that is down
  // would register with cluster_admin, which no token may give (SPEC §10).
  const adminKey = d.keys.admin(req.node_id);
  if ((await readKey(d.client, adminKey, AdminGrant)) !== null) {
    throw refuse(adminIdRefusal(req.node_id));
  }
  const names = mergeNames(
    { dns: [req.node_id, "localhost"], ips: ["127.0.0.1"] },
    asked,
  );
  const node_cert = await issueCert(ca, {
    cn: req.node_id,
    dns: names.dns,
    ips: names.ips,
    publicKey,
    server: true,
    client: true,
  }, now);
  // The only write: consume the token. Compared on the mod revision just
  // read, so of two joins racing on one token exactly one deletes it; and on
  // what was checked above: the id still unregistered, this node still admin.
  const key = d.keys.joinToken(await sha256Hex(claims.token_id));
  const stored = await readKey(d.client, key, JoinTokenRecord);
  if (stored === null) {
    throw refuse("the token was already used, or has expired");
  }
  const nodeKey = d.keys.node(req.node_id);
  const res = await runTxn(
    d.client,
    [
      { key, target: "mod", equals: stored.mod },
      { key: nodeKey, target: "version", equals: 0 },
      { key: adminKey, target: "version", equals: 0 },
      authority,
    ],
    [
      { op: "delete", key },
    ],
    5000,
    [key, nodeKey, authority.key, adminKey],
  );
  if (!res.ok) {
    const [token, node, grant, joinerGrant] = res.reads ?? [];
    throw refuse(
      token?.kv?.mod_revision !== stored.mod
        ? "the token was already used, or has expired"
        : node?.kv
        ? `node id ${req.node_id} is registered by a live node`
        : joinerGrant?.kv
        ? adminIdRefusal(req.node_id)
        : (grant?.kv?.mod_revision ?? 0) !== authority.equals
        ? `PermissionDenied: node ${d.nodeId} stopped being cluster_admin while admitting ${req.node_id}`
        : "the token was already used, or has expired",
    );
  }
  d.log.info("node admitted", {
    joined_node: req.node_id,
    caps: req.caps,
    revision: res.revision,
  });
  return { node_cert, ca_pem: ca.cert_pem, etcd_endpoints: d.etcdEndpoints };
}

/** Why a join under the id of a granted admin is refused, and what to do. */
function adminIdRefusal(nodeId: string): string {
  return `node id ${nodeId} holds a cluster_admin grant: a join cannot take that id (revoke the grant first, or start that node with its own certificate)`;
}
