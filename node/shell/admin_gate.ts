/**
 * Loads the cluster's admin secret for the node's HTTP server and holds it
 * (node/admin_secret.ts has the rules). The node keeps a copy in
 * `<data_dir>/admin_secret` (mode 0600): it answers mutating requests at
 * once after a restart while etcd is down, and the local CLI reads it then
 * (`dispatch` reporting a refusal to `POST /internal/dispatch-rejected`).
 */
import type { Etcd3 } from "etcd3";
import {
  AdminSecretRecord,
  isAdminSecret,
  newAdminSecret,
  refuseMutating,
} from "../admin_secret.ts";
import { runTxn } from "./etcd_io.ts";
import type { Logger } from "./log.ts";

/** The file in the data dir that holds a copy of the secret. */
export const ADMIN_SECRET_FILE = "admin_secret";

/** Options of `AdminGate.load`. */
export interface LoadOptions {
  client: Etcd3;
  /** `<prefix>cluster/admin_secret`. */
  key: string;
  node_id: string;
  data_dir: string;
  log: Pick<Logger, "warn" | "error">;
  signal: AbortSignal;
  /** First pause between etcd attempts, doubling to 5 s. @default 500 */
  retryMs?: number;
}

/** The node's side of the admin secret. */
export class AdminGate {
  #secret: string | null = null;

  /** Null until loaded. */
  get secret(): string | null {
    return this.#secret;
  }

  /** A refusal for a mutating request, or null to go ahead. */
  check(req: Request): Response | null {
    const r = refuseMutating(req.headers, this.#secret);
    return r === null ? null : new Response(
      JSON.stringify({ error: r.error }) + "\n",
      { status: r.status, headers: { "content-type": "application/json" } },
    );
  }

  /**
   * The file copy first (if any), then etcd until it answers: creates the
   * record if there is none (compare version == 0), else adopts it.
   */
  async load(o: LoadOptions): Promise<void> {
    const file = `${o.data_dir}/${ADMIN_SECRET_FILE}`;
    const cached = await Deno.readTextFile(file).then(
      (t) => t.trim(),
      () => "",
    );
    if (isAdminSecret(cached)) this.#secret = cached;
    let pause = o.retryMs ?? 500;
    let warned = false;
    while (!o.signal.aborted) {
      try {
        const secret = await ensureSecret(o.client, o.key, o.node_id);
        this.#secret = secret;
        if (secret !== cached) await writePrivate(file, secret);
        return;
      } catch (e) {
        if (!warned) {
          o.log.warn("admin secret not loaded from etcd yet; retrying", {
            key: o.key,
            error: (e as Error).message,
            from_file: this.#secret !== null,
          });
          warned = true;
        }
      }
      await sleep(pause, o.signal);
      pause = Math.min(pause * 2, 5000);
    }
  }
}

/** Creates the record if absent (version 0), then reads what is there. */
async function ensureSecret(
  client: Etcd3,
  key: string,
  node_id: string,
): Promise<string> {
  const mine: AdminSecretRecord = {
    secret: newAdminSecret(),
    created_at: Date.now(),
    created_by: node_id,
  };
  await runTxn(client, [{ key, target: "version", equals: 0 }], [
    { op: "put", key, value: JSON.stringify(mine) },
  ]);
  const text = await client.get(key).string();
  let parsed;
  try {
    parsed = AdminSecretRecord.safeParse(JSON.parse(text ?? ""));
  } catch {
    parsed = null;
  }
  if (!parsed?.success) {
    // Never overwritten blindly: an operator must delete a damaged record.
    throw new Error(
      `${key}: invalid record (delete it to have a node create a new one)`,
    );
  }
  return parsed.data.secret;
}

/** Writes `text` to `path` readable only by this user, atomically. */
async function writePrivate(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, `${text}\n`, { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
