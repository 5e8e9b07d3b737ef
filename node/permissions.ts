/**
 * The node's permission lock (issue 15): which paths, addresses and commands
 * one configured node may use, as Deno `--allow-*` flags. Deno's static sets
 * in deno.json cannot name runtime values (the data dir, etcd endpoints, the
 * listen address, plugin commands), so `node/launch.ts` computes these from
 * the same config the node will load and starts `node/main.ts` under them.
 * Pure: every fact about the machine comes in through {@linkcode LockInputs}.
 * @module
 */
import type { NodeConfig } from "./shell/config.ts";
import type { PluginConfig } from "./plugins/config.ts";
import { LOCAL_ENDPOINT } from "./etcd_errors.ts";

/** The embedded etcd's directory (node/shell/local_etcd.ts), relative to the working dir. */
export const LOCAL_ETCD_DIR = ".boi/etcd";

/** What the lock is computed from. */
export interface LockInputs {
  config: NodeConfig;
  plugins: readonly PluginConfig[];
  /** Absolute working directory of the node. */
  cwd: string;
  /** Config files the node reads (boi.yaml if present, BOI_PLUGINS), as given. */
  configFiles: readonly string[];
  /** Other paths the node reads, e.g. Deno's npm package dir. */
  extraReads?: readonly string[];
  /** Finds a bare command on PATH (absolute path) or null. */
  which(name: string): string | null;
  /**
   * The etcd endpoints the node will use: configured, or stored by its join
   * (`<data_dir>/identity/join.json`); null starts the embedded etcd.
   */
  endpoints: readonly string[] | null;
  /** `BOI_BOOTSTRAP_URL` when the node has yet to join, else null. */
  bootstrap: string | null;
  /** The addresses a host name resolves to now (empty if it does not). */
  resolve(host: string): string[];
}

/** The allowances, each a list Deno takes after `--allow-<name>=`; `read[0]` is the data dir. */
export interface NodeLock {
  read: string[];
  write: string[];
  net: string[];
  run: string[];
}

/** A path made absolute against the working dir, without a trailing slash. */
function abs(cwd: string, p: string): string {
  const a = p.startsWith("/") ? p : `${cwd}/${p.replace(/^\.\//, "")}`;
  return a.length > 1 ? a.replace(/\/+$/, "") : a;
}

/** Host and port of a URL or `host[:port]` (port "" when it has none). */
function splitTarget(target: string): { host: string; port: string } {
  if (!target.includes("://")) {
    // Not through URL: it drops a port that is the scheme's default (":80").
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(target);
    if (m) return { host: m[1], port: m[2] ?? "" };
  }
  const u = new URL(target.includes("://") ? target : `http://${target}`);
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return { host: u.hostname, port };
}

const IP = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\])$/;

/**
 * The net entries that let the node connect to `target`. Deno's own fetch
 * (tail forwarding, the join) is checked against the URL's `host:port`. An
 * etcd connection goes through grpc-js, which resolves names with node:dns
 * first: Deno checks that lookup against the bare name (all ports), then
 * the connection against each address it resolves to, allowed on that port
 * (a DNS change needs a restart of the node). IP addresses need neither.
 */
function netEntries(
  target: string,
  resolve: (h: string) => string[],
  lookup: boolean,
): string[] {
  const { host, port } = splitTarget(target);
  const at = (h: string) => port === "" ? h : `${h}:${port}`;
  if (IP.test(host) || !lookup) return [at(host)];
  const ips = host === "localhost" ? ["127.0.0.1", "[::1]"] : resolve(host)
    .map((a) => a.includes(":") ? `[${a}]` : a);
  return [host, ...ips.map(at)];
}

/**
 * The lock of one node: read/write its data dir (its identity and
 * certificates live there; and the embedded etcd's dir when it starts one),
 * read its config and TLS files; reach its etcd endpoints, the bootstrap
 * node while it has yet to join, its own listen addresses, its plugin
 * sockets and the declared peers; run its plugin commands, `prlimit` (the
 * open-file limit) and, embedded, `etcd`.
 */
export function nodeLock(i: LockInputs): NodeLock {
  const c = i.config;
  const dataDir = abs(i.cwd, c.data_dir);
  const read = new Set<string>([dataDir]);
  const write = new Set<string>([dataDir]);
  const net = new Set<string>();
  const run = new Set<string>();
  for (const f of [...i.configFiles, ...(i.extraReads ?? [])]) {
    read.add(abs(i.cwd, f));
  }
  const reach = (t: string, lookup = false) => {
    for (const e of netEntries(t, i.resolve, lookup)) net.add(e);
  };
  if (c.etcd_tls !== null) {
    for (const f of [c.etcd_tls.ca, c.etcd_tls.cert, c.etcd_tls.key]) {
      read.add(abs(i.cwd, f));
    }
  }
  if (i.endpoints === null) {
    const dir = abs(i.cwd, LOCAL_ETCD_DIR);
    read.add(dir);
    write.add(dir);
    reach(LOCAL_ENDPOINT, true);
    run.add(i.which("etcd") ?? "etcd");
  } else {
    for (const e of i.endpoints) reach(e, true);
  }
  if (i.bootstrap !== null) reach(i.bootstrap);
  // Its own listeners: HTTP(S), and the join listener of an admin node.
  // Port 0 lets the node pick one: only the host can be named then.
  net.add(c.http_port === 0 ? c.http_host : `${c.http_host}:${c.http_port}`);
  net.add(`${c.join_host}:${c.join_port}`);
  net.add(`unix:${dataDir}/http.sock`);
  net.add(`unix:${dataDir}/join.sock`);
  net.add(`unix:${dataDir}/https.sock`);
  for (const p of c.peers) reach(p);
  for (const p of i.plugins) {
    const socket = p.spec.socket ?? `${dataDir}/plugins/${p.spec.name}.sock`;
    net.add(`unix:${socket}`);
    if (p.spec.socket !== undefined) {
      read.add(socket);
      write.add(socket);
    }
    const exe = p.spec.argv?.[0];
    if (exe === undefined) continue;
    // A placeholder in argv[0] is filled per incarnation: it cannot be
    // named in advance, so that plugin is refused at spawn (documented).
    if (exe.includes("{")) continue;
    const path = exe.includes("/")
      ? abs(p.spec.cwd ? abs(i.cwd, p.spec.cwd) : i.cwd, exe)
      : i.which(exe);
    if (path === null) continue; // checkPluginCommands names it at start
    run.add(path);
    read.add(path); // checkPluginCommands stats it
  }
  const prlimit = i.which("prlimit");
  if (prlimit !== null) run.add(prlimit);
  return {
    read: [...read],
    write: [...write],
    net: [...net],
    run: [...run],
  };
}

/** The lock as `deno run` flags, after `-P=node`; throws on a path Deno cannot list. */
export function lockFlags(l: NodeLock): string[] {
  for (const v of [...l.read, ...l.write, ...l.net, ...l.run]) {
    if (v.includes(",")) {
      throw new Error(
        `permission lock: ${
          JSON.stringify(v)
        } holds a comma, which Deno's --allow-* lists cannot express: rename it`,
      );
    }
  }
  const flag = (name: string, list: string[]) =>
    list.length ? [`--allow-${name}=${list.join(",")}`] : [`--deny-${name}`];
  return [
    ...flag("read", l.read),
    ...flag("write", l.write),
    ...flag("net", l.net),
    ...flag("run", l.run),
  ];
}
