/**
 * The cluster's admin secret on the CLI side (node/admin_secret.ts): read
 * from etcd for every mutating node request (`plugin restart`,
 * `logs sweep`); while etcd is unreachable, from the local node's 0600 copy
 * in its data dir (`dispatch` reporting a refusal).
 */
import {
  ADMIN_SECRET_HEADER,
  AdminSecretRecord,
  isAdminSecret,
} from "../node/admin_secret.ts";
import type { Ctx, Io } from "./context.ts";
import { CliError } from "./errors.ts";
import type { Store } from "./store.ts";

/** The header a mutating request to a node must carry. */
export async function adminHeaders(
  ctx: Ctx,
  store: Store,
): Promise<Record<string, string>> {
  const key = ctx.keys.adminSecret();
  const { item, exists } = await store.get(key, AdminSecretRecord);
  if (!exists) {
    throw new CliError(
      `no admin secret in etcd (${key}): no node has started against this etcd and prefix yet`,
    );
  }
  if (item === null) {
    throw new CliError(
      `${key}: invalid record (delete it to have a node create a new one)`,
    );
  }
  return { [ADMIN_SECRET_HEADER]: item.value.secret };
}

/**
 * The local node's copy, for a request made while etcd is unreachable:
 * `$BOI_DATA_DIR/admin_secret`, else `.boi/$BOI_NODE_ID/admin_secret`, else
 * the newest `.boi/<node>/admin_secret` in the working directory (the
 * default data dirs). Null when there is none.
 */
export async function localAdminSecret(io: Io): Promise<string | null> {
  const dirs: string[] = [];
  const dataDir = io.env("BOI_DATA_DIR");
  const nodeId = io.env("BOI_NODE_ID");
  if (dataDir) dirs.push(dataDir);
  else if (nodeId) dirs.push(`.boi/${nodeId}`);
  else {
    try {
      for await (const e of Deno.readDir(".boi")) {
        if (e.isDirectory) dirs.push(`.boi/${e.name}`);
      }
    } catch { /* no .boi here */ }
  }
  let best: { secret: string; mtime: number } | null = null;
  for (const d of dirs) {
    try {
      const path = `${d}/admin_secret`;
      const secret = (await Deno.readTextFile(path)).trim();
      const mtime = (await Deno.stat(path)).mtime?.getTime() ?? 0;
      if (isAdminSecret(secret) && (best === null || mtime > best.mtime)) {
        best = { secret, mtime };
      }
    } catch { /* not there or not readable */ }
  }
  return best?.secret ?? null;
}
