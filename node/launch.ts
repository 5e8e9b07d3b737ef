/**
 * `deno task node`: starts `node/main.ts` under the permission lock. Deno's
 * static sets cannot name the data dir, the etcd endpoints, the listen
 * address or the plugin commands, so this reads the same config the node
 * will (env, `boi.yaml`, `BOI_PLUGINS`), computes the `--allow-*` flags
 * (node/permissions.ts) and runs the node as its child: signals are passed
 * on, the child's exit code is ours, and the child's stdin is a pipe from us
 * (the lifeline: if we die, even by SIGKILL, the node shuts down).
 *
 * `--print`: print the exact command instead of running it (for a service
 * unit or container that runs the node directly, without this wrapper).
 * @module
 */
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { loadConfig } from "./shell/config.ts";
import { parsePluginsConfig } from "./plugins/config.ts";
import { lockFlags, nodeLock } from "./permissions.ts";
import { identityPaths } from "./identity/files.ts";
import { nodeHeapFlags } from "./heap_flags.ts";
import { loaderFreeEnv } from "./shell/child_env.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
/** Named, so `-P=node` is found whatever the working dir of the printed command. */
const CONFIG = fileURLToPath(new URL("../deno.json", import.meta.url));

/** Finds `name` on PATH the way a spawn would; null when absent. */
function which(name: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    try {
      const st = Deno.statSync(`${dir}/${name}`);
      if (st.isFile && (st.mode === null || (st.mode & 0o111) !== 0)) {
        return `${dir}/${name}`;
      }
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Where Deno keeps the npm packages the node loads: etcd3 and grpc read their
 * `.proto` files from there at run time (read-only, public package content).
 */
function npmDir(): string {
  const file = createRequire(import.meta.url).resolve("etcd3");
  for (const mark of ["/registry.npmjs.org/", "/node_modules/"]) {
    const at = file.indexOf(mark);
    if (at >= 0) return file.slice(0, at + mark.length - 1);
  }
  return file.replace(/\/[^/]*$/, "");
}

function readIfExists(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
}

/** The etcd endpoints a previous join stored, if the node holds a certificate. */
function storedJoin(dataDir: string): { endpoints: string[] | null } | null {
  const p = identityPaths(dataDir);
  if (readIfExists(p.cert) === null) return null;
  const join = readIfExists(p.join);
  const parsed = join === null
    ? {}
    : JSON.parse(join) as { etcd_endpoints?: string[] };
  return { endpoints: parsed.etcd_endpoints ?? null };
}

/** How long a named etcd host may take to resolve (containers start in any order). */
const RESOLVE_WAIT_MS = 30_000;

/**
 * What `getent ahosts` resolves `host` to, waiting up to RESOLVE_WAIT_MS for
 * a name that does not resolve yet; empty when it never does (the node then
 * reports etcd unreachable, naming the endpoint).
 */
function resolve(host: string): string[] {
  const until = Date.now() + RESOLVE_WAIT_MS;
  let warned = false;
  for (;;) {
    const found = resolveOnce(host);
    if (found.length > 0 || Date.now() >= until) return found;
    if (!warned) {
      console.error(`boi node: waiting for ${host} to resolve (etcd endpoint)`);
      warned = true;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
}

function resolveOnce(host: string): string[] {
  try {
    const out = new Deno.Command("getent", {
      args: ["ahosts", host],
      clearEnv: true,
      env: loaderFreeEnv().env,
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const words = new TextDecoder().decode(out.stdout).split("\n")
      .map((l) => l.split(/\s+/)[0]).filter((a) => a !== "");
    return [...new Set(words)];
  } catch {
    return [];
  }
}

/** One start of the locked node: its argv and the env it adds. */
export interface LockedCommand {
  argv: string[];
  env: Record<string, string>;
  /**
   * True for the join step: a node that must join and was given no etcd
   * endpoints learns them from the join, so it first runs only until it has
   * joined (allowed the bootstrap node, not etcd) and is then started again
   * under a lock naming the endpoints it stored.
   */
  joinStep: boolean;
}

/** The locked node's command, from this process's env and working dir. */
export function lockedCommand(): LockedCommand {
  const yaml = readIfExists("boi.yaml");
  const config = loadConfig(
    Deno.env.toObject(),
    yaml === null ? null : { path: "boi.yaml", text: yaml },
    Deno.hostname(),
  );
  const pf = config.plugins_file;
  const ptext = pf === null ? null : readIfExists(pf);
  if (pf !== null && ptext === null) {
    throw new Error(`BOI_PLUGINS: no such file: ${pf}`);
  }
  const plugins = parsePluginsConfig(
    pf === null ? null : { path: pf, text: ptext! },
  );
  const cwd = Deno.cwd();
  const dataDir = config.data_dir.startsWith("/")
    ? config.data_dir
    : `${cwd}/${config.data_dir.replace(/^\.\//, "")}`;
  const stored = storedJoin(dataDir);
  const joining = stored === null && config.join_token !== null;
  const joinStep = joining && config.etcd_endpoints === null;
  // boi.yaml even when absent: the node looks for it (NotFound is fine).
  const configFiles = ["boi.yaml", ...(pf === null ? [] : [pf])];
  const lock = nodeLock({
    config,
    plugins,
    cwd,
    configFiles,
    extraReads: [npmDir()],
    which,
    endpoints: joinStep ? [] : config.etcd_endpoints ?? stored?.endpoints ??
      null,
    bootstrap: joining ? config.bootstrap_url : null,
    resolve,
  });
  return {
    argv: [
      Deno.execPath(),
      "run",
      "-q",
      `--config=${CONFIG}`,
      "-P=node",
      ...lockFlags(lock),
      ...nodeHeapFlags(Deno.env.get("DENO_V8_FLAGS")),
      MAIN,
    ],
    // Absolute, so the sockets under it match the flags whatever the cwd.
    env: {
      BOI_DATA_DIR: dataDir,
      ...(joinStep ? { BOI_LAUNCH_PHASE: "join" } : {}),
    },
    joinStep,
  };
}

/** Runs one locked start as our child: signals passed on, stdin its lifeline. */
async function runLocked(c: LockedCommand): Promise<number> {
  // By name: the set `node-launcher` may run `deno` from PATH (a static set
  // cannot name Deno.execPath(), which is often behind a symlink).
  const { env, dropped } = loaderFreeEnv();
  if (dropped.length > 0) {
    console.error(
      `boi node: not passing ${
        dropped.join(", ")
      } to the node: a permission-locked process may not start plugins with loader variables in its env; a task that needs one sets it in its spec's env`,
    );
  }
  const child = new Deno.Command("deno", {
    args: c.argv.slice(1),
    clearEnv: true,
    env: { ...env, ...c.env, BOI_LIFELINE: "stdin" },
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const pass = (sig: Deno.Signal) => () => {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  };
  const listeners = (["SIGTERM", "SIGINT", "SIGHUP"] as const).map((
    sig,
  ) => [sig, pass(sig)] as const);
  for (const [sig, f] of listeners) Deno.addSignalListener(sig, f);
  const s = await child.status;
  for (const [sig, f] of listeners) Deno.removeSignalListener(sig, f);
  return s.signal ? 128 + signalNumber(s.signal) : s.code;
}

async function main(): Promise<number> {
  let c: LockedCommand;
  try {
    c = lockedCommand();
    if (Deno.args.includes("--print")) {
      if (c.joinStep) {
        console.error(
          "boi node: a join is pending and no BOI_ETCD_ENDPOINTS are set: this is the join step; run it, then --print again for the node",
        );
      }
      console.log(
        [...Object.entries(c.env).map(([k, v]) => `${k}=${v}`), ...c.argv]
          .map(shellQuote).join(" "),
      );
      return 0;
    }
    if (c.joinStep) {
      const code = await runLocked(c);
      if (code !== 0) return code;
      c = lockedCommand();
      if (c.joinStep) {
        throw new Error(
          "the join step ended but no node certificate is stored: see the log above",
        );
      }
    }
  } catch (e) {
    // The node would refuse the same config with the same line.
    console.error(`boi node: ${(e as Error).message}`);
    return 2;
  }
  return await runLocked(c);
}

function signalNumber(sig: Deno.Signal): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<
    string,
    number
  >)[sig] ?? 1;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)
    ? s
    : `'${s.replace(/'/g, `'\\''`)}'`;
}

if (import.meta.main) Deno.exit(await main());
