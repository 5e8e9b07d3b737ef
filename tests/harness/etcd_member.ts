/**
 * One etcd process of the harness: spawned on given ports and data dir, its
 * output appended to a log file, and stopped, killed, frozen or restarted
 * on the same ports and data.
 */
import { connectEtcd, type EtcdTls } from "../../node/etcd_client.ts";
import { deadline } from "../../node/etcd_errors.ts";
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

/** Files etcd serves TLS with, and the PEM texts the harness's own client connects with. */
export interface EtcdTlsOptions {
  /** `--trusted-ca-file`, `--cert-file`, `--key-file`. */
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The test client's CA, certificate and key (PEM text). */
  client: EtcdTls;
}

/** @internal How `startEtcd` / `startEtcdCluster` configure a member. */
export interface MemberConfig {
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
