/**
 * Reference provisioner (SPEC §7, §10): a real provisioner on one machine.
 * `Allocate` starts a new local node process — its own data dir, a free
 * port, the caps of the hint, and the join token — which joins the cluster
 * through `bootstrap_url` like any new machine would; `Deallocate` stops it
 * (SIGTERM, SIGKILL after 4 s; the node's own plugins follow it by their
 * stdin lifeline) and removes its data dir. The nodes are this plugin's children: they stop when it does.
 *
 * Settings (the `env` of its plugins-file entry):
 * - `BOI_PROVISION_NODE_ARGV` — JSON argv that starts a node; default
 *   `["deno","run","-q","-P=node-launcher","node/launch.ts"]` (`deno task
 *   node`: the node under its permission lock), run in the plugin's cwd.
 * - `BOI_PROVISION_NODE_ENV` — JSON object of extra settings for the new
 *   nodes (`BOI_KEY_PREFIX`, `BOI_LEASE_TTL_S`, `BOI_PLUGINS`, …). Never
 *   etcd endpoints: a node gets those from its join answer, and this plugin
 *   never sees them.
 * - `BOI_PROVISION_ROOT` — where node data dirs go; default
 *   `<plugin data dir>/nodes` (one `p-<request_id>` dir per allocation).
 *
 * Run: `deno run -q -P=plugin --allow-net=unix:{socket} --allow-run=deno
 * --allow-env=BOI_*,GRPC_*,PATH,HOME,DENO_DIR,TMPDIR plugins/provisioner_local.ts`
 * (`--allow-run=deno`: it starts deno and nothing else; the env list is what
 * the new node inherits besides its own settings).
 * @module
 */
import type {
  AllocateRequest,
  PluginHandlers,
  Provisioner,
} from "./sdk/mod.ts";
import {
  absolutePath,
  pathSegment,
  pluginEnv,
  PluginError,
  type PluginLogger,
  pluginLogger,
  servePlugin,
} from "./sdk/mod.ts";

/** Settings of {@linkcode localProvisioner}. */
export interface LocalProvisionerOptions {
  /** The command that starts a node. @default ["deno","run","-q","-P=node-launcher","node/launch.ts"] */
  argv?: string[];
  /** Extra environment for every node started. @default {} */
  node_env?: Record<string, string>;
  /** Parent of the nodes' data dirs. */
  root: string;
  log: PluginLogger;
}

/** Environment a started node inherits from the plugin (when the plugin may read it). */
const PASS_ENV = ["PATH", "HOME", "DENO_DIR", "TMPDIR", "BOI_LOG_LEVEL"];

/** Settings a node must not be handed by config: the join gives them, or Allocate does. */
const OWN_ENV =
  /^BOI_(ETCD_.*|JOIN_TOKEN|BOOTSTRAP_URL|CAPS|REGION|NODE_ID|DATA_DIR|HTTP_ADDR)$/;

/** SIGTERM → SIGKILL; under the supervisor's 5 s shutdown grace, so a stopping plugin finishes it. */
const STOP_GRACE_MS = 4000;

interface Allocation {
  child: Deno.ChildProcess;
  dataDir: string;
  node_id: string;
}

/** Handlers that start and stop local nodes, plus `stopAll` for shutdown. */
export function localProvisioner(
  o: LocalProvisionerOptions,
): PluginHandlers<Provisioner> & { stopAll(): Promise<void> } {
  const argv = o.argv ??
    ["deno", "run", "-q", "-P=node-launcher", "node/launch.ts"];
  for (const k of Object.keys(o.node_env ?? {})) {
    if (OWN_ENV.test(k)) {
      throw new Error(
        `BOI_PROVISION_NODE_ENV: ${k} is not for config (the join answer or Allocate sets it)`,
      );
    }
  }
  const root = absolutePath(o.root);
  const allocations = new Map<string, Allocation>();

  const stop = async (id: string, a: Allocation) => {
    allocations.delete(id);
    // The child itself (no run permission beyond deno is needed for that);
    // its own plugins follow it by their stdin lifeline.
    const signal = (sig: Deno.Signal) => {
      try {
        a.child.kill(sig);
      } catch {
        // already gone
      }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), STOP_GRACE_MS);
    await a.child.status;
    clearTimeout(timer);
    await Deno.remove(a.dataDir, { recursive: true }).catch(() => {});
    o.log.info("node stopped", { allocation_id: id, node_id: a.node_id });
  };

  return {
    async allocate(req: AllocateRequest, ctx) {
      pathSegment("request_id", req.request_id);
      const allocation_id = `local-${req.request_id}`;
      if (allocations.has(allocation_id)) return { allocation_id }; // a retried Allocate
      const env = nodeEnv(req, o.node_env ?? {});
      const node_id = `p-${req.request_id}`.toLowerCase().slice(0, 63);
      const dataDir = `${root}/${node_id}`;
      await Deno.mkdir(dataDir, { recursive: true });
      const logFile = await Deno.open(`${dataDir}/node.log`, {
        create: true,
        append: true,
      });
      const [cmd, ...args] = argv;
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(cmd, {
          args,
          clearEnv: true,
          env: {
            ...env,
            BOI_NODE_ID: node_id,
            BOI_DATA_DIR: dataDir,
            BOI_HTTP_ADDR: "127.0.0.1:0",
          },
          stdin: "null",
          stdout: "null",
          stderr: "piped",
          // Its own process group: the supervisor's group kill of this plugin
          // must not cut the node's graceful stop (lease release) short.
          detached: true,
        }).spawn();
      } catch (e) {
        logFile.close();
        throw new PluginError(
          "FAILED_PRECONDITION",
          `cannot start ${cmd}: ${(e as Error).message}`,
        );
      }
      child.stderr.pipeTo(logFile.writable).catch(() => {});
      allocations.set(allocation_id, { child, dataDir, node_id });
      child.status.then((s) => {
        if (allocations.get(allocation_id)?.child === child) {
          o.log.warn("node exited", {
            allocation_id,
            node_id,
            code: s.code,
            log: `${dataDir}/node.log`,
          });
        }
      });
      ctx.log.info("node started", {
        allocation_id,
        node_id,
        pid: child.pid,
        caps: env.BOI_CAPS,
      });
      return { allocation_id };
    },
    async deallocate(req) {
      const a = allocations.get(req.allocation_id);
      if (a) await stop(req.allocation_id, a); // unknown: already taken back
    },
    async stopAll() {
      await Promise.all([...allocations].map(([id, a]) => stop(id, a)));
    },
  };
}

/** The new node's environment: passed-through basics, config, and the hint as caps. */
function nodeEnv(
  req: AllocateRequest,
  extra: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of PASS_ENV) {
    try {
      const v = Deno.env.get(k);
      if (v !== undefined) env[k] = v;
    } catch {
      // not readable by this plugin: the node goes without
    }
  }
  Object.assign(env, extra);
  const here: Record<string, string> = {
    os: Deno.build.os,
    arch: Deno.build.arch === "aarch64" ? "arm64" : "x86_64",
  };
  const caps: string[] = [];
  for (const [k, v] of Object.entries(req.hint)) {
    if (k === "os" || k === "arch") {
      if (here[k] !== v) {
        throw new PluginError(
          "FAILED_PRECONDITION",
          `this machine has ${k}=${here[k]}; the hint asks for ${k}=${v}`,
        );
      }
    } else if (k === "region") env.BOI_REGION = v;
    else caps.push(`${k}=${v}`);
  }
  env.BOI_CAPS = caps.join(",");
  env.BOI_JOIN_TOKEN = req.join_token;
  env.BOI_BOOTSTRAP_URL = req.bootstrap_url;
  return env;
}

/** A JSON setting, or a one-line error naming the variable. */
function jsonSetting<T>(
  name: string,
  check: (v: unknown) => v is T,
  what: string,
): T | undefined {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    v = undefined;
  }
  if (!check(v)) {
    throw new Error(`${name} must be ${what}: got ${JSON.stringify(raw)}`);
  }
  return v;
}

if (import.meta.main) {
  const log = pluginLogger("provisioner_local");
  let argv: string[] | undefined;
  let node_env: Record<string, string> | undefined;
  try {
    argv = jsonSetting(
      "BOI_PROVISION_NODE_ARGV",
      (v): v is string[] =>
        Array.isArray(v) && v.length > 0 &&
        v.every((a) => typeof a === "string" && a !== ""),
      "a JSON array of strings",
    );
    node_env = jsonSetting(
      "BOI_PROVISION_NODE_ENV",
      (v): v is Record<string, string> =>
        typeof v === "object" && v !== null && !Array.isArray(v) &&
        Object.values(v).every((x) => typeof x === "string"),
      "a JSON object of strings",
    );
  } catch (e) {
    console.error(`provisioner_local: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const prov = localProvisioner({
    argv,
    node_env,
    root: Deno.env.get("BOI_PROVISION_ROOT") || `${pluginEnv().data_dir}/nodes`,
    log,
  });
  await servePlugin({
    kind: "provisioner",
    name: "provisioner_local",
    version: "1.0.0",
    onShutdown: prov.stopAll,
    allocate: prov.allocate,
    deallocate: prov.deallocate,
  });
}
