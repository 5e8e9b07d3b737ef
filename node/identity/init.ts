/**
 * `cluster init` on the node (SPEC §10): create the CA, keep its key here,
 * record `{cert_pem, fingerprint}` once, and mark this node admin. With
 * `secure`, also issue etcd's server certificate, a CLI client certificate
 * and this node's own certificate, so etcd can require client certificates.
 */
import { CaRecord } from "./records.ts";
import { type Ca, createCa, issueKeyAndCert, stageCaKey } from "./ca.ts";
import { commitInit } from "./admin.ts";
import { IdentityError } from "./errors.ts";
import {
  certsPaths,
  identityPaths,
  writePublic,
  writeSecret,
} from "./files.ts";
import { readKey } from "./kv.ts";
import { hostNames, type IdentityDeps } from "./deps.ts";
import { mergeNames } from "./cert_names.ts";

/** What `POST /internal/cluster/init` answers. */
export interface InitResult {
  fingerprint: string;
  node_id: string;
  secure: boolean;
  /** Absolute path of the issued certificates (secure only). */
  certs_dir?: string;
  /** Flags that make etcd require client certificates (secure only). */
  etcd_flags?: string[];
  /** Environment for nodes and the CLI that talk to that etcd (secure only). */
  env?: Record<string, string>;
}

/**
 * One init at a time in this process: two at once (a CLI that retried after
 * its timeout) shared `ca.key.pending`, and the one whose record committed
 * could rename the other's key beside its certificate, so every join failed
 * and the real key was gone. The second now waits, then finds the record.
 */
let initializing: Promise<unknown> = Promise.resolve();

/** Creates the cluster; a second init anywhere is refused and changes nothing. */
export function initCluster(
  d: IdentityDeps,
  opts: { secure: boolean },
  now = Date.now(),
): Promise<InitResult> {
  const run = initializing.then(() => initOnce(d, opts, now));
  initializing = run.catch(() => {});
  return run;
}

async function initOnce(
  d: IdentityDeps,
  opts: { secure: boolean },
  now: number,
): Promise<InitResult> {
  const existing = await readKey(d.client, d.keys.ca(), CaRecord);
  if (existing !== null) throw alreadyInitialized(existing.value);
  const { ca, key_pem } = await createCa(`boi-cluster-ca-${d.nodeId}`, now);
  let staged;
  try {
    staged = await stageCaKey(d.dataDir, key_pem);
  } catch (e) {
    throw new IdentityError("InvalidArgument", (e as Error).message);
  }
  const record: CaRecord = {
    cert_pem: ca.cert_pem,
    fingerprint: ca.fingerprint,
    created_by: d.nodeId,
    created_at: now,
    secure: opts.secure,
  };
  let ok = false;
  try {
    ok = await commitInit(
      d.client,
      d.keys,
      d.nodeId,
      JSON.stringify(record),
      now,
    );
  } finally {
    if (!ok) await staged.abort();
  }
  if (!ok) {
    const now2 = await readKey(d.client, d.keys.ca(), CaRecord);
    throw alreadyInitialized(now2?.value ?? null);
  }
  await staged.commit(ca.cert_pem);
  d.log.info("cluster initialised", {
    fingerprint: ca.fingerprint,
    secure: opts.secure,
  });
  const result: InitResult = {
    fingerprint: ca.fingerprint,
    node_id: d.nodeId,
    secure: opts.secure,
  };
  if (opts.secure) Object.assign(result, await issueSecureFiles(d, ca));
  return result;
}

function alreadyInitialized(rec: CaRecord | null): IdentityError {
  return new IdentityError(
    "AlreadyInitialized",
    `cluster already initialised${
      rec === null
        ? " (the CA record is unreadable)"
        : `: CA fingerprint ${rec.fingerprint}${
          rec.created_by ? ` (created by ${rec.created_by})` : ""
        }`
    }; nothing changed`,
  );
}

/** etcd server + CLI client certificates under `<data_dir>/certs`, this node's under `<data_dir>/identity`. */
async function issueSecureFiles(
  d: IdentityDeps,
  ca: Ca,
): Promise<Pick<InitResult, "certs_dir" | "etcd_flags" | "env">> {
  const c = certsPaths(d.dataDir);
  const etcd = await issueKeyAndCert(ca, {
    cn: "etcd",
    dns: hostNames(),
    ips: ["127.0.0.1"],
    server: true,
    client: true, // etcd members dial each other with it too
  });
  const cli = await issueKeyAndCert(ca, {
    cn: "cli",
    dns: ["cli"],
    server: false,
    client: true,
  });
  const names = mergeNames(
    { dns: hostNames([d.nodeId]), ips: ["127.0.0.1"] },
    d.httpNames ?? { dns: [], ips: [] },
  );
  const self = await issueKeyAndCert(ca, {
    cn: d.nodeId,
    dns: names.dns,
    ips: names.ips,
    server: true,
    client: true,
  });
  await writePublic(c.ca, ca.cert_pem);
  await writePublic(c.etcdCert, etcd.cert_pem);
  await writeSecret(c.etcdKey, etcd.key_pem);
  await writePublic(c.cliCert, cli.cert_pem);
  await writeSecret(c.cliKey, cli.key_pem);
  const id = identityPaths(d.dataDir);
  await writePublic(id.ca, ca.cert_pem);
  await writePublic(id.cert, self.cert_pem);
  await writeSecret(id.key, self.key_pem);
  const dir = await Deno.realPath(c.dir);
  // The port etcd serves this node on now; it keeps it under TLS.
  let port = "2379";
  try {
    port = new URL(d.etcdEndpoints[0]).port || port;
  } catch { /* keep the default */ }
  return {
    certs_dir: dir,
    etcd_flags: [
      "--client-cert-auth",
      `--trusted-ca-file=${dir}/ca.crt`,
      `--cert-file=${dir}/etcd-server.crt`,
      `--key-file=${dir}/etcd-server.key`,
      `--listen-client-urls=https://127.0.0.1:${port}`,
      `--advertise-client-urls=https://localhost:${port}`,
    ],
    env: {
      BOI_ETCD_ENDPOINTS: `https://localhost:${port}`,
      BOI_ETCD_CA: `${dir}/ca.crt`,
      BOI_ETCD_CERT: `${dir}/client.crt`,
      BOI_ETCD_KEY: `${dir}/client.key`,
    },
  };
}
