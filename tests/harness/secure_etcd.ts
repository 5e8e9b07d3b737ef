/**
 * A secure cluster's etcd, brought up as docs/operations.md does: first an
 * open etcd, where the admin node's `cluster init --secure` creates the CA
 * and the etcd and client certificates; then the same data served over TLS
 * with client-certificate auth.
 */
import assert from "node:assert/strict";
import { cli } from "./cli_run.ts";
import { startEtcd } from "./etcd.ts";
import type { EtcdServer } from "./etcd_handle.ts";
import type { NodeOptions } from "./node_options.ts";
import { startNode } from "./node_proc.ts";
import { makeTempDir } from "./paths.ts";

/** What {@linkcode startSecureEtcd} brought up. */
export interface SecureEtcd {
  /** etcd with TLS and `--client-cert-auth`; the caller disposes it (`await using`). */
  etcd: EtcdServer;
  /** The certificates dir `cluster init --secure` wrote (ca.crt, client.*, etcd-server.*). */
  certs: string;
  /** The JSON answer of `cluster init --secure --json`. */
  init: { certs_dir: string; etcd_flags: string[] };
}

/** Options of {@linkcode startSecureEtcd}. */
export interface SecureEtcdOptions {
  /**
   * Prefix of etcd's temp data dir.
   * @default "boi-etcd-secure-"
   */
  dataDirPrefix?: string;
}

/**
 * Initialises a secure cluster with `admin` (started on an open etcd, then
 * stopped) and restarts etcd on the same data with the cluster's
 * certificates. `admin` needs a `dataDir`: the CA key it created there must
 * outlive the open phase, since the caller starts the admin node again.
 */
export async function startSecureEtcd(
  admin: NodeOptions,
  opts: SecureEtcdOptions = {},
): Promise<SecureEtcd> {
  assert.ok(
    admin.dataDir !== undefined,
    `admin node ${admin.nodeId} needs a dataDir: its CA must outlive the open etcd`,
  );
  const dataDir = await makeTempDir(opts.dataDirPrefix ?? "boi-etcd-secure-");
  let init: SecureEtcd["init"];
  {
    // Open first: the admin node creates the CA and the etcd certificates.
    await using open = await startEtcd({ dataDir });
    await using node = await startNode(open, admin);
    const r = await cli(open, [
      "cluster",
      "init",
      "--secure",
      "--node",
      node.httpAddr,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    init = JSON.parse(r.stdout);
  }
  const certs = init.certs_dir;
  const pem = async (f: string) => await Deno.readTextFile(`${certs}/${f}`);
  const etcd = await startEtcd({
    dataDir,
    tls: {
      caFile: `${certs}/ca.crt`,
      certFile: `${certs}/etcd-server.crt`,
      keyFile: `${certs}/etcd-server.key`,
      client: {
        ca: await pem("ca.crt"),
        cert: await pem("client.crt"),
        key: await pem("client.key"),
      },
    },
  });
  return { etcd, certs, init };
}
