/**
 * Where identity material lives on disk, and writing it: private keys are
 * created 0600 in 0700 directories and never overwritten in place.
 */

/** A node's own certificate, key and CA (after a join, or on the admin node after `init --secure`). */
export function identityPaths(dataDir: string) {
  const dir = `${dataDir}/identity`;
  return {
    dir,
    key: `${dir}/node.key`,
    cert: `${dir}/node.crt`,
    ca: `${dir}/ca.crt`,
    /** `{etcd_endpoints, joined_at, bootstrap_url}` from the join answer. */
    join: `${dir}/join.json`,
  };
}

/** Certificates `cluster init --secure` issues for etcd and the CLI (copy them where they run). */
export function certsPaths(dataDir: string) {
  const dir = `${dataDir}/certs`;
  return {
    dir,
    ca: `${dir}/ca.crt`,
    etcdCert: `${dir}/etcd-server.crt`,
    etcdKey: `${dir}/etcd-server.key`,
    cliCert: `${dir}/client.crt`,
    cliKey: `${dir}/client.key`,
  };
}

/** Writes a private key: 0600, atomically (temp file + rename), never world-readable in between. */
export async function writeSecret(path: string, text: string): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, text, { mode: 0o600, createNew: true });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}

/** Writes a public file (certificates, join.json). */
export async function writePublic(path: string, text: string): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, text, { mode: 0o644, createNew: true });
  await Deno.rename(tmp, path);
}

/** The text of a file, or null when it does not exist. */
export async function readIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
