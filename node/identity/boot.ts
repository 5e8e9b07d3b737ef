/**
 * What a node settles before it starts (SPEC §10, §13): join with a token if
 * it has no certificate yet, then how it reaches etcd (endpoints, TLS) and
 * whether its own HTTP is served over TLS with client-certificate checks.
 */
import type { EtcdTls } from "../etcd_client.ts";
import type { NodeConfig } from "../shell/config.ts";
import type { Logger } from "../shell/log.ts";
import { joinCluster, loadIdentity, type NodeIdentity } from "./join_client.ts";
import { issueCert, loadCa, signedBy } from "./ca.ts";
import {
  advertisedNames,
  certNamesOf,
  joinRequestNames,
  missingNames,
  nodeCertNames,
  unnamedHosts,
} from "./cert_names.ts";
import { identityPaths, writePublic } from "./files.ts";
import { EC_ALG, x509 } from "./x509.ts";

/** The node's security settings, resolved. */
export interface Boot {
  /** null: start or reuse the local etcd. */
  endpoints: string[] | null;
  etcdTls: EtcdTls | null;
  /** Set in secure mode: serve HTTPS with this certificate and check callers against `ca`. */
  https: { cert: string; key: string; ca: string } | null;
  identity: NodeIdentity | null;
}

/** Joins if needed and resolves the connection settings; throws one-line errors. */
export async function boot(config: NodeConfig, log: Logger): Promise<Boot> {
  let identity = await loadIdentity(config.data_dir);
  if (identity !== null && config.join_token !== null) {
    log.info(
      "stored certificate found: rejoining with it, BOI_JOIN_TOKEN is not used",
    );
  }
  if (identity === null && config.join_token !== null) {
    if (config.bootstrap_url === null) {
      throw new Error(
        "BOI_JOIN_TOKEN needs BOI_BOOTSTRAP_URL=https://<admin host>:<join port>",
      );
    }
    identity = await joinCluster({
      token: config.join_token,
      bootstrapUrl: config.bootstrap_url,
      nodeId: config.node_id,
      caps: config.static_caps,
      dataDir: config.data_dir,
      names: joinRequestNames(config.http_host, config.http_hosts),
    });
    log.info("joined the cluster", { bootstrap_url: config.bootstrap_url });
  }
  const endpoints = config.etcd_endpoints ?? identity?.etcd_endpoints ?? null;
  let etcdTls: EtcdTls | null = null;
  if (config.etcd_tls !== null) {
    const read = (what: string, path: string) =>
      Deno.readTextFile(path).catch((e) => {
        throw new Error(
          `BOI_ETCD_${what}: cannot read ${path}: ${(e as Error).message}`,
        );
      });
    etcdTls = {
      ca: await read("CA", config.etcd_tls.ca),
      cert: await read("CERT", config.etcd_tls.cert),
      key: await read("KEY", config.etcd_tls.key),
    };
  } else if (
    identity !== null && endpoints?.some((e) => e.startsWith("https://"))
  ) {
    etcdTls = {
      ca: identity.ca_pem,
      cert: identity.cert_pem,
      key: identity.key_pem,
    };
  }
  if (endpoints?.some((e) => e.startsWith("https://")) && etcdTls === null) {
    throw new Error(
      "etcd is reached over https but the node has no certificate: join with BOI_JOIN_TOKEN, or set BOI_ETCD_CA, BOI_ETCD_CERT and BOI_ETCD_KEY",
    );
  }
  // Secure mode: etcd is reached with a certificate. Then the node's own HTTP
  // is TLS too, with its node certificate, and checks its callers'.
  if (etcdTls !== null && identity === null) {
    throw new Error(
      `secure mode needs a node certificate in ${config.data_dir}/identity: join with BOI_JOIN_TOKEN and BOI_BOOTSTRAP_URL (or run cluster init --secure on this node first)`,
    );
  }
  if (identity !== null) identity = await coverAddr(config, identity, log);
  const https = etcdTls === null || identity === null
    ? null
    : { cert: identity.cert_pem, key: identity.key_pem, ca: identity.ca_pem };
  return { endpoints, etcdTls, https, identity };
}

/**
 * A stored certificate that does not name the host callers reach this node
 * by (`BOI_HTTP_ADDR` or `BOI_HTTP_HOSTS` changed since it was issued) makes
 * the CLI and other nodes refuse its HTTPS. The admin node holds the CA key
 * and issues itself a new one; any other node says so at start.
 */
async function coverAddr(
  config: NodeConfig,
  identity: NodeIdentity,
  log: Logger,
): Promise<NodeIdentity> {
  const unnamed = unnamedHosts(config.http_host, config.http_hosts);
  if (unnamed.length > 0) {
    log.warn(
      "BOI_HTTP_ADDR or BOI_HTTP_HOSTS names a host no certificate can carry (a DNS name or an IP address is expected): HTTPS callers that use it will refuse this node",
      { hosts: unnamed },
    );
  }
  const have = certNamesOf(identity.cert_pem);
  const missing = missingNames(
    have,
    advertisedNames(config.http_host, config.http_hosts),
  );
  if (missing.length === 0) return identity;
  const ca = await loadCa(config.data_dir);
  const old = new x509.X509Certificate(identity.cert_pem);
  const cn = old.subjectName.getField("CN")[0];
  if (
    ca === null || cn !== config.node_id ||
    !(await signedBy(identity.cert_pem, ca.cert_pem))
  ) {
    log.warn(
      "the node certificate does not name the host it is reached by: the CLI and other nodes will refuse its HTTPS; join again with a new token after removing <data_dir>/identity",
      { missing, certificate: identityPaths(config.data_dir).cert },
    );
    return identity;
  }
  const want = nodeCertNames(
    config.node_id,
    config.http_host,
    config.http_hosts,
  );
  const cert_pem = await issueCert(ca, {
    cn: config.node_id,
    dns: [...new Set([...have.dns, ...want.dns])],
    ips: [...new Set([...have.ips, ...want.ips])],
    publicKey: await old.publicKey.export(EC_ALG, ["verify"]),
    server: true,
    client: true,
  });
  await writePublic(identityPaths(config.data_dir).cert, cert_pem);
  log.info("node certificate reissued with the host it is reached by", {
    added: missing,
  });
  return { ...identity, cert_pem };
}
