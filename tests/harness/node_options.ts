/** What a harness node is started with: its options and the environment they become. */
import { DEFAULT_PREFIX } from "../../node/keys.ts";

/** Options of {@linkcode startNode}. */
export interface NodeOptions {
  /** `BOI_NODE_ID`. */
  nodeId: string;
  /**
   * `BOI_KEY_PREFIX`.
   * @default "/boi/"
   */
  prefix?: string;
  /**
   * `BOI_LEASE_TTL_S`: short, so lease-expiry tests are quick.
   * @default 2
   */
  leaseTtlS?: number;
  /** `BOI_WORKERS_MAX`; the node's default when absent. */
  workersMax?: number;
  /** `BOI_CAPS`, as a map or as `k=v,...`. */
  caps?: Record<string, string> | string;
  /** `BOI_REGION`. */
  region?: string;
  /**
   * Port of `BOI_HTTP_ADDR` (on 127.0.0.1); a free port is picked when absent.
   * Pass 0 to let the node choose.
   */
  httpPort?: number;
  /**
   * Host of `BOI_HTTP_ADDR`: another loopback address stands for another
   * machine's (a certificate must name it).
   * @default "127.0.0.1"
   */
  httpHost?: string;
  /** `BOI_DATA_DIR`; a temp dir under /tmp (removed on dispose) when absent. */
  dataDir?: string;
  /**
   * `BOI_ETCD_ENDPOINTS` for the node, e.g. a partition proxy's address.
   * @default etcd.endpoint
   */
  endpoints?: string;
  /**
   * `BOI_LOG_LEVEL`.
   * @default "debug"
   */
  logLevel?: string;
  /** More environment (wins over the above). */
  env?: Record<string, string>;
  /**
   * Wait until `<prefix>nodes/<node_id>` holds this process's registration.
   * @default true
   */
  waitRegistered?: boolean;
  /**
   * Deadline for the registration.
   * @default 30000
   */
  readyTimeoutMs?: number;
  /**
   * How long `stop()` waits after SIGTERM before SIGKILL.
   * @default 5000
   */
  stopGraceMs?: number;
  /**
   * The deno.json permission set the entry runs under: `node-launcher` with
   * entry `node/launch.ts` is exactly `deno task node` (the permission lock).
   * @default "node-test"
   */
  permissionSet?: string;
  /**
   * Entry module, relative to the repo root (the harness's own tests use a fake node).
   * @default "node/main.ts"
   */
  entry?: string;
  /** Extra `deno run` flags before the entry, e.g. `["--inspect=127.0.0.1:9339"]` to profile. */
  denoFlags?: string[];
  /** Run the node under `ulimit -n` of this many descriptors (soft and hard); inherited when absent. */
  openFileLimit?: number;
}

function capsText(caps: NodeOptions["caps"]): string | undefined {
  if (caps === undefined || typeof caps === "string") return caps;
  return Object.entries(caps).map(([k, v]) => `${k}=${v}`).join(",");
}

/**
 * The node's environment from `opts` (before `opts.env` and the harness's
 * own variables are laid over it): one place that maps options to `BOI_*`.
 */
export function nodeEnv(
  endpoint: string,
  opts: NodeOptions,
  httpAddr: string,
  dataDir: string,
): Record<string, string> {
  const env: Record<string, string> = {
    BOI_NODE_ID: opts.nodeId,
    BOI_ETCD_ENDPOINTS: opts.endpoints ?? endpoint,
    BOI_HTTP_ADDR: httpAddr,
    BOI_DATA_DIR: dataDir,
    BOI_LEASE_TTL_S: String(opts.leaseTtlS ?? 2),
    BOI_KEY_PREFIX: opts.prefix ?? DEFAULT_PREFIX,
    BOI_LOG_LEVEL: opts.logLevel ?? "debug",
  };
  if (opts.workersMax !== undefined) {
    env.BOI_WORKERS_MAX = String(opts.workersMax);
  }
  const caps = capsText(opts.caps);
  if (caps !== undefined) env.BOI_CAPS = caps;
  if (opts.region !== undefined) env.BOI_REGION = opts.region;
  return env;
}
