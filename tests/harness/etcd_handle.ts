/**
 * What a test holds of a started etcd: a single member (`EtcdServer`) or a
 * cluster (`EtcdCluster`), with a shared client for the test's own reads and
 * stop / kill / restart / dispose over every member.
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
import type { EtcdTls } from "../../node/etcd_client.ts";
import { deadline } from "../../node/etcd_errors.ts";
import type { EtcdMember } from "./etcd_member.ts";

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
