/**
 * Node configuration (SPEC §13): environment variables, over an optional
 * `boi.yaml` whose fields are the variable names without `BOI_`, lower-cased.
 */
import { parseHosts, parsePeers } from "./config_lists.ts";
import type { CoreConfig } from "../core/view.ts";
import { z } from "zod";
import { DEFAULT_PREFIX } from "../keys.ts";
import { parseEndpoints } from "../etcd_errors.ts";
import { capabilityError, parseCapsList } from "../caps.ts";
import { ID_PATTERN } from "../schema.ts";
import { parseYaml, YamlError } from "../yaml.ts";

const int = (min: number) =>
  z.coerce.number({ error: "must be a whole number" }).int(
    "must be a whole number",
  ).min(
    min,
    `must be at least ${min}`,
  );

/** Most tasks one node runs at once: beyond this a typo (`1e9`), not a plan. */
export const MAX_WORKERS = 1024;

/** Every setting with its default; `BOI_<NAME>` in the environment overrides `name` in boi.yaml. */
const ConfigSchema = z.object({
  /** @default hostname */
  node_id: z.string().regex(ID_PATTERN, "must match ^[a-z0-9][a-z0-9_-]{0,62}$")
    .optional(),
  /** Comma-separated; absent → a local single-member etcd under .boi/etcd. */
  etcd_endpoints: z.string().optional(),
  /** @default "127.0.0.1:7001" */
  http_addr: z.string().default("127.0.0.1:7001"),
  /** @default ".boi/<node_id>" */
  data_dir: z.string().optional(),
  /** @default 10 (minimum 2) */
  lease_ttl_s: int(2).default(10),
  /** @default 4 (1 to MAX_WORKERS) */
  workers_max: int(1).max(MAX_WORKERS, `must be at most ${MAX_WORKERS}`)
    .default(4),
  /** `k=v,...` user capabilities */
  caps: z.string().default(""),
  region: z.string().optional(),
  plugins: z.string().optional(),
  /**
   * Comma-separated `host:port` (or `host`: any port) of other nodes this
   * one may forward tail requests to under the permission lock. @default none
   */
  peers: z.string().optional(),
  /**
   * Comma-separated host names the HTTP server answers to besides IP
   * literals, localhost and the host of `http_addr` (`*`: any); other
   * `Host` headers get 421 (DNS rebinding, node/shell/host_guard.ts). @default none
   */
  http_hosts: z.string().optional(),
  /** One-time join token (SPEC §10); ignored once the node has a stored certificate. */
  join_token: z.string().optional(),
  /** `https://<admin host>:<join port>` to join through. */
  bootstrap_url: z.string().refine((u) => {
    try {
      return new URL(u).protocol === "https:";
    } catch {
      return false;
    }
  }, "must be https://<host>:<port>").optional(),
  /** Where an admin node's join listener binds. @default "127.0.0.1:7400" */
  join_addr: z.string().default("127.0.0.1:7400"),
  /** CA, certificate and key files for etcd over TLS; default: the stored node identity. */
  etcd_ca: z.string().optional(),
  etcd_cert: z.string().optional(),
  etcd_key: z.string().optional(),
  /** @default "/boi/" */
  key_prefix: z.string().refine(
    (p) => p.startsWith("/") && p.endsWith("/"),
    'must start and end with "/"',
  ).default(DEFAULT_PREFIX),
  /** @default "info" */
  log_level: z.enum(["debug", "info", "warn", "error"], {
    error: "must be one of debug, info, warn, error",
  }).default("info"),
  /** Wait before a non-winner claims (SPEC §5.5). @default 1000 */
  spill_after_ms: int(0).default(1000),
  /** Extra wait per rank beyond the first (SPEC §5.5). @default 100 */
  spill_step_ms: int(0).default(100),
  /** First retry delay, doubling per retry. @default 1000 */
  retry_backoff_ms: int(0).default(1000),
  /** In-memory sweep period for spill-over and backoff deadlines. @default 100 */
  tick_ms: int(10).default(100),
  /** Claim expiries counted within this window (SPEC §6). @default 300000 */
  claim_failure_window_ms: int(1).default(300_000),
  /** Expiries in the window that make the node degraded. @default 3 */
  claim_failure_limit: int(1).default(3),
  /** How long the node then stays degraded. @default 300000 */
  claim_failure_cooldown_ms: int(0).default(300_000),
  /** How long a provisioned node has to join (SPEC §10). @default 60000 */
  provision_deadline_ms: int(100).default(60_000),
  /** No Allocate for a requires this long after the failure limit. @default 300000 */
  provision_cooldown_ms: int(0).default(300_000),
  /** Consecutive failures of one requires that start the cooldown. @default 3 */
  provision_failure_limit: int(1).default(3),
  /** Lease of a provisioning request: how long a dead admin's request stays open. @default 300 */
  provision_req_ttl_s: int(2).default(300),
  /**
   * A finished spec is deleted from etcd this long after its last task
   * ended; 0 keeps every spec forever (node/core/retire.ts). @default 604800 (7 days)
   */
  spec_retention_s: int(0).default(604_800),
  /**
   * Envelopes whose spec record never came (a dispatch that died half-way)
   * are deleted once this node has seen them so this long
   * (node/core/retire_orphans.ts; never with spec_retention_s 0). @default 3600
   */
  orphan_grace_s: int(1).default(3600),
}).strict();

export interface NodeConfig {
  node_id: string;
  /** null: start or reuse the local etcd. */
  etcd_endpoints: string[] | null;
  http_host: string;
  http_port: number;
  data_dir: string;
  lease_ttl_s: number;
  workers_max: number;
  static_caps: Record<string, string>;
  key_prefix: string;
  log_level: "debug" | "info" | "warn" | "error";
  spill_after_ms: number;
  spill_step_ms: number;
  retry_backoff_ms: number;
  tick_ms: number;
  claim_failure_window_ms: number;
  claim_failure_limit: number;
  claim_failure_cooldown_ms: number;
  provision_deadline_ms: number;
  provision_cooldown_ms: number;
  provision_failure_limit: number;
  provision_req_ttl_s: number;
  spec_retention_s: number;
  orphan_grace_s: number;
  /** `BOI_PLUGINS`: the plugins file; null runs the reference workspace and pool. */
  plugins_file: string | null;
  join_token: string | null;
  bootstrap_url: string | null;
  join_host: string;
  join_port: number;
  /** `BOI_ETCD_CA/CERT/KEY` (all or none). */
  etcd_tls: { ca: string; cert: string; key: string } | null;
  /** `BOI_PEERS`: where tail forwarding may connect under the lock (node/permissions.ts). */
  peers: string[];
  /** `BOI_HTTP_HOSTS`: more names the HTTP server answers to (`*`: any). */
  http_hosts: string[];
}

/** Detected `os` cap. */
export function detectOs(): string {
  return Deno.build.os === "linux" || Deno.build.os === "darwin" ||
      Deno.build.os === "windows"
    ? Deno.build.os
    : "linux";
}

/** Detected `arch` cap. */
export function detectArch(): string {
  return Deno.build.arch === "aarch64" ? "arm64" : "x86_64";
}

/**
 * Reads config from `env` and the optional file; throws one-line errors that
 * name the variable (or file field) and the value seen.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  file: { path: string; text: string } | null,
  hostname: string,
): NodeConfig {
  const raw: Record<string, unknown> = {};
  if (file) {
    let doc: unknown;
    try {
      doc = parseYaml(file.text);
    } catch (e) {
      if (e instanceof YamlError) throw new Error(e.in(file.path));
      throw e;
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== "object" || Array.isArray(doc)) {
        throw new Error(
          `${file.path}: must be a mapping of settings like "lease_ttl_s: 10": got ${
            shown(doc)
          }`,
        );
      }
      Object.assign(raw, doc);
    }
  }
  const fromEnv = new Set<string>();
  // An empty variable means "unset", except the node's identity: an empty
  // BOI_NODE_ID is a templating slip, not a wish for the host name.
  if (env.BOI_NODE_ID === "") {
    throw new Error(
      'BOI_NODE_ID must not be empty (unset it to use the host name): got ""',
    );
  }
  for (const k of Object.keys(ConfigSchema.shape)) {
    const v = env[`BOI_${k.toUpperCase()}`];
    if (v !== undefined && v !== "") {
      raw[k] = v;
      fromEnv.add(k);
    }
  }
  const where = (field: string) =>
    fromEnv.has(field)
      ? `BOI_${field.toUpperCase()}`
      : `${file?.path ?? "config"}: ${field}`;
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(
      issue.path[0] ?? ("keys" in issue ? issue.keys[0] : "?"),
    );
    const seen = issue.path.length ? raw[field] : undefined;
    if (issue.code === "unrecognized_keys") {
      throw new Error(
        `${
          where(field)
        }: not a setting (fields are the BOI_* variable names without BOI_, lower-cased, e.g. lease_ttl_s)`,
      );
    }
    throw new Error(
      `${where(field)} ${issue.message}${
        seen !== undefined ? `: got ${shown(seen)}` : ""
      }`,
    );
  }
  const c = parsed.data;
  if (c.region !== undefined) {
    const bad = capabilityError("region", c.region);
    if (bad !== null) {
      throw new Error(
        `${where("region")} ${
          bad.replace(/^capability region /, "").replace(/: got .*$/, "")
        }: got ${shown(c.region)}`,
      );
    }
  }
  const node_id = c.node_id ?? sanitizeHostname(hostname);
  const m = hostPort(c.http_addr, where("http_addr"), "127.0.0.1:7001");
  const j = hostPort(c.join_addr, where("join_addr"), "127.0.0.1:7400");
  const tlsFiles = [c.etcd_ca, c.etcd_cert, c.etcd_key];
  if (tlsFiles.some((f) => f) && !tlsFiles.every((f) => f)) {
    throw new Error(
      "BOI_ETCD_CA, BOI_ETCD_CERT and BOI_ETCD_KEY must be given together",
    );
  }
  const declared = parseCapsList(c.caps, where("caps"));
  // SPEC §2: os and arch are detected. A value given here that differs
  // would be dropped without a word; say so instead.
  const detected = { os: detectOs(), arch: detectArch() };
  for (const [k, v] of Object.entries(detected)) {
    if (declared[k] !== undefined && declared[k] !== v) {
      throw new Error(
        `${where("caps")}: ${k} is detected automatically (${v} here): got ${
          shown(declared[k])
        }`,
      );
    }
  }
  if (
    c.region && declared.region !== undefined && declared.region !== c.region
  ) {
    throw new Error(
      `${where("caps")}: region is also set by ${where("region")} (${
        shown(c.region)
      }): got ${shown(declared.region)}`,
    );
  }
  const static_caps: Record<string, string> = { ...declared, ...detected };
  if (c.region) static_caps.region = c.region;
  return {
    node_id,
    etcd_endpoints: c.etcd_endpoints
      ? named(where("etcd_endpoints"), () => parseEndpoints(c.etcd_endpoints!))
      : null,
    http_host: m[1],
    http_port: Number(m[2]),
    data_dir: c.data_dir ?? `.boi/${node_id}`,
    lease_ttl_s: c.lease_ttl_s,
    workers_max: c.workers_max,
    static_caps,
    key_prefix: c.key_prefix,
    log_level: c.log_level,
    spill_after_ms: c.spill_after_ms,
    spill_step_ms: c.spill_step_ms,
    retry_backoff_ms: c.retry_backoff_ms,
    tick_ms: c.tick_ms,
    claim_failure_window_ms: c.claim_failure_window_ms,
    claim_failure_limit: c.claim_failure_limit,
    claim_failure_cooldown_ms: c.claim_failure_cooldown_ms,
    provision_deadline_ms: c.provision_deadline_ms,
    provision_cooldown_ms: c.provision_cooldown_ms,
    provision_failure_limit: c.provision_failure_limit,
    provision_req_ttl_s: c.provision_req_ttl_s,
    spec_retention_s: c.spec_retention_s,
    orphan_grace_s: c.orphan_grace_s,
    plugins_file: c.plugins ?? null,
    join_token: c.join_token ?? null,
    bootstrap_url: c.bootstrap_url ?? null,
    join_host: j[1],
    join_port: Number(j[2]),
    etcd_tls: c.etcd_ca
      ? { ca: c.etcd_ca, cert: c.etcd_cert!, key: c.etcd_key! }
      : null,
    peers: parsePeers(c.peers ?? "", where("peers")),
    http_hosts: parseHosts(c.http_hosts ?? "", where("http_hosts")),
  };
}

/** `host:port` or `host` entries; throws naming the variable and the bad entry. */
/** Runs `f`, prefixing its error with the setting it read (`BOI_X` or `boi.yaml: x`). */
function named<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/** A value as quoted in an error: JSON, cut to 64 characters so the line stays readable. */
function shown(v: unknown): string {
  const s = JSON.stringify(v);
  if (s.length <= 64) return s;
  const bytes = new TextEncoder().encode(String(v)).length;
  return `${s.slice(0, 60)}…" (${bytes} bytes)`;
}

/** `host:port` split, or a one-line error naming the variable. */
function hostPort(addr: string, name: string, example: string): string[] {
  const m = /^([^:]+|\[[^\]]+\]):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[2]) > 65535) {
    throw new Error(
      `${name} must be host:port like "${example}": got ${
        JSON.stringify(addr)
      }`,
    );
  }
  return m;
}

/** Host names may hold dots and capitals; node ids may not. */
function sanitizeHostname(h: string): string {
  const s = h.toLowerCase().split(".")[0].replace(/[^a-z0-9_-]/g, "-").slice(
    0,
    63,
  );
  return ID_PATTERN.test(s) ? s : "node";
}

/** The core's tuning knobs from the node's config (the provisioning ones only with a provisioner). */
export function coreConfig(c: NodeConfig, provisioner: boolean): CoreConfig {
  return {
    node_id: c.node_id,
    workers_max: c.workers_max,
    static_caps: c.static_caps,
    spill_after_ms: c.spill_after_ms,
    spill_step_ms: c.spill_step_ms,
    retry_backoff_ms: c.retry_backoff_ms,
    cancel_grace_ms: 1000,
    claim_failure_window_ms: c.claim_failure_window_ms,
    claim_failure_limit: c.claim_failure_limit,
    claim_failure_cooldown_ms: c.claim_failure_cooldown_ms,
    spec_retention_ms: c.spec_retention_s * 1000,
    orphan_grace_ms: c.orphan_grace_s * 1000,
    provision: provisioner
      ? {
        deadline_ms: c.provision_deadline_ms,
        cooldown_ms: c.provision_cooldown_ms,
        failure_limit: c.provision_failure_limit,
        req_ttl_s: c.provision_req_ttl_s,
      }
      : null,
  };
}
