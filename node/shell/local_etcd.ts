/**
 * The embedded default for one machine (SPEC §0): with no etcd configured the
 * node starts a single-member etcd under `.boi/etcd`, or reuses the one a
 * previous node started there.
 */
import { connectEtcd } from "../etcd_client.ts";
import { deadline, LOCAL_ENDPOINT } from "../etcd_errors.ts";
import type { Logger } from "./log.ts";
import { loaderFreeEnv } from "./child_env.ts";

const DIR = ".boi/etcd";

async function answers(endpoint: string): Promise<boolean> {
  const c = connectEtcd([endpoint], { failFast: true, dialTimeoutMs: 500 });
  try {
    await c.kv.range(
      { key: new TextEncoder().encode("/") as never },
      deadline(800),
    );
    return true;
  } catch {
    return false;
  } finally {
    c.close();
  }
}

/** Returns the local endpoint, starting etcd first if nothing answers there. */
export async function ensureLocalEtcd(log: Logger): Promise<string> {
  if (await answers(LOCAL_ENDPOINT)) {
    log.info("using local etcd", { endpoint: LOCAL_ENDPOINT });
    return LOCAL_ENDPOINT;
  }
  await Deno.mkdir(DIR, { recursive: true });
  // etcd itself, not through a shell: the permission lock runs `etcd` only.
  const child = new Deno.Command("etcd", {
    args: [
      "--logger=zap",
      `--log-outputs=${DIR}/etcd.log`,
      "--name=boi-local",
      `--data-dir=${DIR}/data`,
      "--listen-client-urls=http://127.0.0.1:2379",
      "--advertise-client-urls=http://127.0.0.1:2379",
      "--listen-peer-urls=http://127.0.0.1:2380",
      "--initial-advertise-peer-urls=http://127.0.0.1:2380",
      "--initial-cluster=boi-local=http://127.0.0.1:2380",
    ],
    clearEnv: true,
    env: loaderFreeEnv().env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true, // outlives this node: other local nodes share it
  }).spawn();
  child.unref();
  await Deno.writeTextFile(`${DIR}/etcd.pid`, `${child.pid}\n`);
  log.info("started local etcd", {
    endpoint: LOCAL_ENDPOINT,
    data_dir: `${DIR}/data`,
    pid: child.pid,
  });
  const until = Date.now() + 15_000;
  while (Date.now() < until) {
    if (await answers(LOCAL_ENDPOINT)) return LOCAL_ENDPOINT;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `local etcd did not answer on ${LOCAL_ENDPOINT} within 15 s: see ${DIR}/etcd.log`,
  );
}
