/**
 * Real etcd processes for end-to-end tests: one member (`startEtcd`) or a
 * cluster (`startEtcdCluster`), on free loopback ports and temp data dirs.
 */
import { Etcd3, isRecoverableError } from "etcd3";
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ConstantBackoff,
  handleWhen,
  retry,
} from "cockatiel";
import { Buffer } from "node:buffer";
import { connectEtcd, type EtcdTls } from "../../node/etcd_client.ts";
import { deadline } from "../../node/etcd_errors.ts";
import { artifactPath, makeTempDir } from "./paths.ts";
import { freePorts } from "./ports.ts";
import {
  describe,
  settlesWithin,
  StopWaiting,
  waitFor,
  within,
} from "./wait.ts";

/** The etcd binary: `BOI_ETCD_BIN`, else `etcd` on PATH. */
function etcdBin(): string {
  return Deno.env.get("BOI_ETCD_BIN") ?? "etcd";
}

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

/** Files etcd serves TLS with, and the PEM texts the harness's own client connects with. */
export interface EtcdTlsOptions {
  /** `--trusted-ca-file`, `--cert-file`, `--key-file`. */
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The test client's CA, certificate and key (PEM text). */
  client: EtcdTls;
}

interface MemberConfig {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  initialCluster: string;
  args: string[];
  stopGraceMs: number;
  readyTimeoutMs: number;
  tls?: EtcdTlsOptions;
}

/** One etcd process that can be stopped, killed, frozen and restarted on the same ports and data. */
export class EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** `http://127.0.0.1:<clientPort>`, or `https://localhost:<clientPort>` with TLS. */
  readonly endpoint: string;
  /** What the harness's client shows a TLS etcd; undefined for plain HTTP. */
  readonly clientTls: EtcdTls | undefined;
  #cfg: MemberConfig;
  #child: Deno.ChildProcess | null = null;
  #status: Promise<Deno.CommandStatus> | null = null;
  #exited: Deno.CommandStatus | null = null;

  /** @internal Use `startEtcd` / `startEtcdCluster`. */
  constructor(cfg: MemberConfig, logFile: string) {
    this.#cfg = cfg;
    this.name = cfg.name;
    this.clientPort = cfg.clientPort;
    this.peerPort = cfg.peerPort;
    this.dataDir = cfg.dataDir;
    this.logFile = logFile;
    // grpc-js refuses IP addresses as TLS targets: name the host.
    this.endpoint = cfg.tls
      ? `https://localhost:${cfg.clientPort}`
      : `http://127.0.0.1:${cfg.clientPort}`;
    this.clientTls = cfg.tls?.client;
  }

  /** The pid while running, else null. */
  get pid(): number | null {
    return this.running ? this.#child!.pid : null;
  }

  /** True from spawn until the process exits. */
  get running(): boolean {
    return this.#child !== null && this.#exited === null;
  }

  /** @internal Spawns etcd; its stdout and stderr append to `logFile`. */
  spawn(): void {
    if (this.running) throw new Error(`etcd ${this.name} is already running`);
    const c = this.#cfg;
    const args = [
      "--name",
      c.name,
      "--data-dir",
      c.dataDir,
      "--listen-client-urls",
      c.tls ? `https://127.0.0.1:${c.clientPort}` : this.endpoint,
      "--advertise-client-urls",
      this.endpoint,
      ...(c.tls
        ? [
          "--client-cert-auth",
          `--trusted-ca-file=${c.tls.caFile}`,
          `--cert-file=${c.tls.certFile}`,
          `--key-file=${c.tls.keyFile}`,
        ]
        : []),
      "--listen-peer-urls",
      `http://127.0.0.1:${c.peerPort}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${c.peerPort}`,
      "--initial-cluster",
      c.initialCluster,
      ...c.args,
    ];
    // `exec` keeps the pid etcd's own, so signals reach etcd and not a shell.
    const child = new Deno.Command("sh", {
      args: ["-c", 'exec "$0" "$@" >>"$BOI_ETCD_LOG" 2>&1', etcdBin(), ...args],
      env: { BOI_ETCD_LOG: this.logFile },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#exited = null;
    this.#status = child.status.then((s) => {
      if (this.#child === child) this.#exited = s;
      return s;
    });
  }

  /** Waits until this member answers with a known leader; fails at once if it exits. */
  async waitReady(timeoutMs = this.#cfg.readyTimeoutMs): Promise<void> {
    await waitFor(
      `etcd ${this.name} at ${this.endpoint} to serve`,
      async () => {
        if (!this.running) {
          throw new StopWaiting(
            `etcd ${this.name} exited (${
              describe(this.#exited)
            }); log tail:\n${await this
              .logTail()}`,
          );
        }
        return await probe(this.endpoint, this.clientTls);
      },
      { timeoutMs, intervalMs: 100 },
    ).catch(async (e) => {
      if (this.running) {
        e.message += `\nlog tail (${this.logFile}):\n${await this.logTail()}`;
      }
      throw e;
    });
  }

  /** Sends `signal` (e.g. SIGSTOP / SIGCONT to freeze etcd) without waiting. */
  signal(signal: Deno.Signal): void {
    if (this.running) this.#child!.kill(signal);
  }

  /** SIGKILL and wait for the exit: a crash. Data stays. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.#child!.kill("SIGKILL");
    await within(
      `etcd ${this.name} to die after SIGKILL`,
      this.#status!,
      10_000,
    );
  }

  /** SIGTERM (SIGKILL after the grace period) and wait for the exit. Data stays. */
  async stop(graceMs = this.#cfg.stopGraceMs): Promise<void> {
    if (!this.running) return;
    this.#child!.kill("SIGCONT"); // a frozen etcd cannot act on SIGTERM
    this.#child!.kill("SIGTERM");
    if (!await settlesWithin(this.#status!, graceMs)) await this.kill();
  }

  /** Starts again with the same name, ports and data dir, and waits until it serves. */
  async restart(): Promise<void> {
    await this.stop();
    this.spawn();
    await this.waitReady();
  }

  /** The last `lines` lines of the log, for failure messages. */
  async logTail(lines = 30): Promise<string> {
    try {
      const text = await Deno.readTextFile(this.logFile);
      return text.trimEnd().split("\n").slice(-lines).join("\n");
    } catch (e) {
      return `(no log: ${(e as Error).message})`;
    }
  }

  /** @internal True if the last exit looks like a port clash. */
  async failedOnPort(): Promise<boolean> {
    return !this.running &&
      /address already in use/i.test(await this.logTail(50));
  }
}

/** True when `endpoint` answers and has a leader (a fresh client per probe: no reconnect backoff). */
async function probe(endpoint: string, tls?: EtcdTls): Promise<boolean> {
  const c = connectEtcd([endpoint], {
    failFast: true,
    dialTimeoutMs: 1000,
    tls,
  });
  try {
    const st = await c.maintenance.status(deadline(1000));
    if (st.leader === "0") return false;
    await c.get("/boi-harness-probe").exec();
    return true;
  } finally {
    c.close();
  }
}

/**
 * A client for the test's own reads: a call that fails on a dead member is
 * retried on another, and a restarted member is tried again after 300 ms.
 */
function testClient(hosts: string[], tls?: EtcdTls): Etcd3 {
  const recoverable = handleWhen((e) => isRecoverableError(e));
  return new Etcd3({
    hosts,
    ...(tls
      ? {
        credentials: {
          rootCertificate: Buffer.from(tls.ca),
          certChain: Buffer.from(tls.cert),
          privateKey: Buffer.from(tls.key),
        },
      }
      : {}),
    dialTimeout: 3000,
    faultHandling: {
      host: () =>
        circuitBreaker(recoverable, {
          halfOpenAfter: 300,
          breaker: new ConsecutiveBreaker(3),
        }),
      global: retry(recoverable, {
        maxAttempts: 2 * hosts.length,
        backoff: new ConstantBackoff(100),
      }),
    },
  });
}

/** Behaviour shared by a single member and a cluster. */
abstract class EtcdBase implements AsyncDisposable {
  /** Client endpoints, comma-separated: the value for `BOI_ETCD_ENDPOINTS` and `--etcd`. */
  abstract readonly endpoint: string;
  #client: Etcd3 | null = null;
  #ownedDirs: string[];

  constructor(ownedDirs: string[]) {
    this.#ownedDirs = ownedDirs;
  }

  /** Every member, in order. */
  abstract get members(): EtcdMember[];

  /**
   * A shared client for test reads and writes. It is closed by `stop`,
   * `restart` and dispose: call `client()` again afterwards, do not keep it.
   */
  client(): Etcd3 {
    this.#client ??= testClient(
      this.endpoint.split(","),
      this.members[0]?.clientTls,
    );
    return this.#client;
  }

  /** @internal */
  closeClient(): void {
    this.#client?.close();
    this.#client = null;
  }

  /** The store's current revision. */
  async revision(): Promise<number> {
    const st = await this.client().maintenance.status(deadline(5000));
    return Number(st.header.revision);
  }

  /** Compacts history up to `rev` (default: the current revision), physically; returns it. */
  async compact(rev?: number): Promise<number> {
    const revision = rev ?? await this.revision();
    await this.client().kv.compact(
      { revision: String(revision), physical: true },
      deadline(10_000),
    );
    return revision;
  }

  /** SIGTERM every member (SIGKILL after the grace period). Data stays for `restart()`. */
  async stop(): Promise<void> {
    this.closeClient();
    await Promise.all(this.members.map((m) => m.stop()));
  }

  /** SIGKILL every member: an etcd crash. Data stays. */
  async kill(): Promise<void> {
    this.closeClient();
    await Promise.all(this.members.map((m) => m.kill()));
  }

  /** Stops (if running) and starts every member on the same ports and data; waits until it serves. */
  async restart(): Promise<void> {
    await this.stop();
    for (const m of this.members) m.spawn();
    await Promise.all(this.members.map((m) => m.waitReady()));
  }

  /** Kills every member and removes the temp data dirs; logs stay under tests/artifacts. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
    for (const d of this.#ownedDirs) {
      await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  }
}

/** A single-member etcd; `endpoint` is one URL. */
export class EtcdServer extends EtcdBase {
  readonly endpoint: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly member: EtcdMember;

  /** @internal Use `startEtcd`. */
  constructor(member: EtcdMember, ownedDirs: string[]) {
    super(ownedDirs);
    this.member = member;
    this.endpoint = member.endpoint;
    this.dataDir = member.dataDir;
    this.logFile = member.logFile;
  }

  get members(): EtcdMember[] {
    return [this.member];
  }

  /** The pid while running, else null. */
  get pid(): number | null {
    return this.member.pid;
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.member.running;
  }
}

/** A multi-member etcd cluster; `endpoint` lists every member. */
export class EtcdCluster extends EtcdBase {
  readonly endpoint: string;
  readonly #members: EtcdMember[];

  /** @internal Use `startEtcdCluster`. */
  constructor(members: EtcdMember[], ownedDirs: string[]) {
    super(ownedDirs);
    this.#members = members;
    this.endpoint = members.map((m) => m.endpoint).join(",");
  }

  get members(): EtcdMember[] {
    return this.#members;
  }
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
