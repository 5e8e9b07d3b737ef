/**
 * Real etcd processes for end-to-end tests: one member (`startEtcd`) or a
 * cluster (`startEtcdCluster`), on free loopback ports and temp data dirs.
 */
import { artifactPath, makeTempDir } from "./paths.ts";
import { freePorts } from "./ports.ts";
import { EtcdMember, type EtcdTlsOptions } from "./etcd_member.ts";
import { EtcdCluster, EtcdServer } from "./etcd_handle.ts";

/** Options shared by {@linkcode startEtcd} and {@linkcode startEtcdCluster}. */
export interface EtcdOptions {
  /**
   * How long to wait for etcd to answer (with a leader) after a start.
   * @default 30000
   */
  readyTimeoutMs?: number;
  /**
   * How long `stop()` waits after SIGTERM before SIGKILL.
   * @default 5000
   */
  stopGraceMs?: number;
  /** Extra etcd flags, e.g. `["--auto-compaction-retention=1"]`. */
  extraArgs?: string[];
  /**
   * Raft heartbeat / election timeout (ms). Defaults are etcd's; short leases
   * in tests do not need them lower.
   * @default [100, 1000]
   */
  raftTimingMs?: [number, number];
}

/** Options of {@linkcode startEtcd}. */
export interface SingleEtcdOptions extends EtcdOptions {
  /**
   * Member name.
   * @default "t"
   */
  name?: string;
  /** Use this data dir (kept on dispose) instead of a fresh temp dir (removed on dispose). */
  dataDir?: string;
  /**
   * Serve clients over TLS with client-certificate auth (`--client-cert-auth`):
   * the endpoint becomes `https://localhost:<port>`. @default plain HTTP
   */
  tls?: EtcdTlsOptions;
}

function baseArgs(opts: EtcdOptions): string[] {
  const [hb, el] = opts.raftTimingMs ?? [100, 1000];
  return [
    "--heartbeat-interval",
    String(hb),
    "--election-timeout",
    String(el),
    "--initial-cluster-state",
    "new",
    ...(opts.extraArgs ?? []),
  ];
}

/**
 * Starts one etcd on free loopback ports with a temp data dir (its log goes
 * to tests/artifacts/etcd/) and waits until it serves. Use with `await using`.
 */
export async function startEtcd(
  opts: SingleEtcdOptions = {},
): Promise<EtcdServer> {
  const name = opts.name ?? "t";
  const owned = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await makeTempDir("boi-etcd-");
  const logFile = await artifactPath("etcd", name);
  for (let attempt = 1;; attempt++) {
    const [clientPort, peerPort] = freePorts(2);
    const member = new EtcdMember({
      name,
      clientPort,
      peerPort,
      dataDir,
      initialCluster: `${name}=http://127.0.0.1:${peerPort}`,
      args: baseArgs(opts),
      stopGraceMs: opts.stopGraceMs ?? 5000,
      readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
      tls: opts.tls,
    }, logFile);
    member.spawn();
    try {
      await member.waitReady();
      return new EtcdServer(member, owned ? [dataDir] : []);
    } catch (e) {
      const clash = await member.failedOnPort();
      await member.kill();
      if (clash && attempt < 5) {
        // Another process took a port between our probe and etcd's bind;
        // a fresh data dir avoids a member id bound to the old ports.
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
        await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
        continue;
      }
      if (owned) {
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      }
      throw e;
    }
  }
}

/** Options of {@linkcode startEtcdCluster}. */
export interface EtcdClusterOptions extends EtcdOptions {
  /**
   * Number of members.
   * @default 3
   */
  members?: number;
}

/**
 * Starts an n-member etcd cluster (members `m0`, `m1`, …) for member-loss
 * tests and waits until every member serves. Use with `await using`.
 */
export async function startEtcdCluster(
  opts: EtcdClusterOptions = {},
): Promise<EtcdCluster> {
  const n = opts.members ?? 3;
  for (let attempt = 1;; attempt++) {
    const ports = freePorts(2 * n);
    const names = Array.from({ length: n }, (_, i) => `m${i}`);
    const initialCluster = names.map((nm, i) =>
      `${nm}=http://127.0.0.1:${ports[2 * i + 1]}`
    ).join(",");
    const dirs: string[] = [];
    const members: EtcdMember[] = [];
    for (let i = 0; i < n; i++) {
      const dataDir = await makeTempDir(`boi-etcd-${names[i]}-`);
      dirs.push(dataDir);
      members.push(
        new EtcdMember({
          name: names[i],
          clientPort: ports[2 * i],
          peerPort: ports[2 * i + 1],
          dataDir,
          initialCluster,
          args: [
            ...baseArgs(opts),
            "--initial-cluster-token",
            `boi-${ports[0]}`,
          ],
          stopGraceMs: opts.stopGraceMs ?? 5000,
          readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
        }, await artifactPath("etcd", `cluster-${names[i]}`)),
      );
    }
    for (const m of members) m.spawn();
    const cluster = new EtcdCluster(members, dirs);
    try {
      await Promise.all(members.map((m) => m.waitReady()));
      return cluster;
    } catch (e) {
      const clash = (await Promise.all(members.map((m) => m.failedOnPort())))
        .some(Boolean);
      await cluster[Symbol.asyncDispose]();
      if (clash && attempt < 5) continue;
      throw e;
    }
  }
}
