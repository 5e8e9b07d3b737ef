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

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

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

/** The locked node's command and the env it needs, from this process's env and working dir. */
export function lockedCommand(): {
  argv: string[];
  env: Record<string, string>;
} {
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
  // boi.yaml even when absent: the node looks for it (NotFound is fine).
  const configFiles = ["boi.yaml", ...(pf === null ? [] : [pf])];
  const lock = nodeLock({
    config,
    plugins,
    cwd: Deno.cwd(),
    configFiles,
    extraReads: [npmDir()],
    which,
  });
  return {
    argv: [Deno.execPath(), "run", "-q", "-P=node", ...lockFlags(lock), MAIN],
    // Absolute, so the sockets under it match the flags whatever the cwd.
    env: { BOI_DATA_DIR: lock.read[0] },
  };
}

async function main(): Promise<number> {
  let argv: string[];
  let env: Record<string, string>;
  try {
    ({ argv, env } = lockedCommand());
  } catch (e) {
    // The node would refuse the same config with the same line.
    console.error(`boi node: ${(e as Error).message}`);
    return 2;
  }
  if (Deno.args.includes("--print")) {
    console.log(
      [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv]
        .map(shellQuote).join(" "),
    );
    return 0;
  }
  // By name: the set `node-launcher` may run `deno` from PATH (a static set
  // cannot name Deno.execPath(), which is often behind a symlink).
  const child = new Deno.Command("deno", {
    args: argv.slice(1),
    env: { ...env, BOI_LIFELINE: "stdin" },
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    Deno.addSignalListener(sig, () => {
      try {
        child.kill(sig);
      } catch {
        // already gone
      }
    });
  }
  const s = await child.status;
  return s.signal ? 128 + signalNumber(s.signal) : s.code;
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
