/**
 * A bench cluster: one real etcd and real node processes (each with its real
 * plugin processes), started with the test harness and configured for load:
 * info logs, a chosen pool mode and capacity.
 */
import type { Etcd3 } from "etcd3";
import {
  type EtcdServer,
  makeTempDir,
  type NodeProc,
  startEtcd,
  startNode,
} from "../tests/harness/mod.ts";
import { Keys } from "../node/keys.ts";

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions {
  /** @default 3 */
  nodes?: number;
  /**
   * `noop` completes every task at once inside the pool plugin (control plane
   * only); `local` runs real processes.
   * @default "local"
   */
  pool?: "local" | "noop";
  /** `BOI_WORKERS_MAX` per node. @default 4 (the node's default) */
  workersMax?: number;
  /** `BOI_LEASE_TTL_S`. @default 2 */
  leaseTtlS?: number;
  /** @default "info" */
  logLevel?: string;
  /** A plugins file (YAML) instead of the reference plugins; wins over `pool`. */
  pluginsYaml?: string;
  /** Extra `deno run` flags of node i (0-based), e.g. `--inspect` to profile one. */
  denoFlags?: (i: number) => string[];
}

/** etcd plus nodes; dispose stops everything. */
export interface Cluster extends AsyncDisposable {
  etcd: EtcdServer;
  nodes: NodeProc[];
  keys: Keys;
  /** Scratch dir for spec files, removed on dispose. */
  dir: string;
  client(): Etcd3;
}

/** Starts etcd and `nodes` nodes named bench-1.. and waits until all are registered. */
export async function startCluster(
  opts: ClusterOptions = {},
): Promise<Cluster> {
  const etcd = await startEtcd({ name: "bench" });
  const dir = await makeTempDir("boi-bench-");
  const nodes: NodeProc[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await etcd[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const env: Record<string, string> = {};
    // For trying a V8 flag on every node of a row without editing the node:
    // `BOI_BENCH_NODE_FLAGS="--v8-flags=--max-semi-space-size=16"`.
    const envFlags = (Deno.env.get("BOI_BENCH_NODE_FLAGS") ?? "").split(" ")
      .filter((f) => f !== "");
    const yaml = opts.pluginsYaml ??
      ((opts.pool ?? "local") === "noop" ? noopPluginsYaml() : null);
    if (yaml !== null) {
      const plugins = `${dir}/plugins.yaml`;
      await Deno.writeTextFile(plugins, yaml);
      env.BOI_PLUGINS = plugins;
    }
    const started = await Promise.all(
      Array.from({ length: opts.nodes ?? 3 }, (_, i) =>
        startNode(etcd, {
          nodeId: `bench-${i + 1}`,
          leaseTtlS: opts.leaseTtlS ?? 2,
          workersMax: opts.workersMax,
          logLevel: opts.logLevel ?? "info",
          env,
          denoFlags: opts.denoFlags?.(i) ?? envFlags,
        })),
    );
    nodes.push(...started);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    etcd,
    nodes,
    keys: new Keys("/boi/"),
    dir,
    client: () => etcd.client(),
    [Symbol.asyncDispose]: stop,
  };
}

/** The reference pool in noop mode, with the reference pool's own permissions. */
export function noopPluginsYaml(): string {
  const repo = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
  const argv = [
    Deno.execPath(),
    "run",
    "-q",
    "-P=plugin",
    "--allow-net=unix:{socket}",
    "--allow-env=BOI_*,GRPC_*,PATH,HOME",
    `${repo}/plugins/pool_local.ts`,
  ];
  return `pool:\n  argv: ${
    JSON.stringify(argv)
  }\n  env: { BOI_POOL_MODE: noop }\n`;
}
