/**
 * Real node processes (`deno run -P=node-test node/main.ts`) for end-to-end tests,
 * with their JSON log lines kept in memory and in a file.
 */
import { DEFAULT_PREFIX } from "../../node/keys.ts";
import { nodeHeapFlags } from "../../node/heap_flags.ts";
import { artifactPath, childEnv, makeTempDir, REPO_ROOT } from "./paths.ts";
import { freePort } from "./ports.ts";
import { type HasClient, readNode } from "./store.ts";
import {
  describe,
  notYet,
  settlesWithin,
  StopWaiting,
  waitFor,
  WaitTimeoutError,
  within,
} from "./wait.ts";
import { type LogLine, parseLine, pumpLines } from "./node_log.ts";
import { nodeEnv, type NodeOptions } from "./node_options.ts";

/**
 * A running node. `restart()` starts a new process with the same id, port and
 * data dir (pending-flush and WAL replay tests); `pid` follows it.
 */
export class NodeProc implements AsyncDisposable {
  readonly nodeId: string;
  readonly prefix: string;
  readonly dataDir: string;
  /** `host:port` given as `BOI_HTTP_ADDR`. */
  readonly httpAddr: string;
  /** `http://<httpAddr>`. */
  readonly url: string;
  readonly logFile: string;
  #etcd: HasClient;
  #env: Record<string, string>;
  #opts: NodeOptions;
  #ownsDataDir: boolean;
  #child: Deno.ChildProcess | null = null;
  #status: Promise<Deno.CommandStatus> | null = null;
  #exited: Deno.CommandStatus | null = null;
  #pumps: Promise<void>[] = [];
  #readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  #logs: LogLine[] = [];
  #file: Deno.FsFile | null = null;

  /** @internal Use `startNode`. */
  constructor(
    etcd: HasClient,
    opts: NodeOptions,
    env: Record<string, string>,
    httpAddr: string,
    dataDir: string,
    ownsDataDir: boolean,
    logFile: string,
  ) {
    this.#etcd = etcd;
    this.#opts = opts;
    this.#env = env;
    this.nodeId = opts.nodeId;
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.httpAddr = httpAddr;
    this.url = `http://${httpAddr}`;
    this.dataDir = dataDir;
    this.#ownsDataDir = ownsDataDir;
    this.logFile = logFile;
  }

  /** The current process's pid (the last one after it exits). */
  get pid(): number {
    if (!this.#child) throw new Error(`node ${this.nodeId} was never started`);
    return this.#child.pid;
  }

  /** True from spawn until the current process exits. */
  get running(): boolean {
    return this.#child !== null && this.#exited === null;
  }

  /** The exit status of the current process, or null while it runs. */
  get exitStatus(): Deno.CommandStatus | null {
    return this.#exited;
  }

  /** Resolves when the current process exits. */
  get exited(): Promise<Deno.CommandStatus> {
    if (!this.#status) throw new Error(`node ${this.nodeId} was never started`);
    return this.#status;
  }

  /** Every stderr line seen so far, parsed (all incarnations, in order). */
  logs(): LogLine[] {
    return [...this.#logs];
  }

  /** Resolves with the first log line (seen before or after the call) that matches. */
  async waitForLog(
    predicate: (line: LogLine) => boolean,
    timeoutMs = 10_000,
  ): Promise<LogLine> {
    try {
      return await waitFor(
        `a log line of node ${this.nodeId} matching ${predicate.toString()}`,
        () =>
          this.#logs.find(predicate) ?? notYet(`${this.#logs.length} lines`),
        { timeoutMs, intervalMs: 50 },
      );
    } catch (e) {
      if (e instanceof WaitTimeoutError) {
        e.message += `\nlast lines of node ${this.nodeId}:\n${
          this.logTail(15)
        }`;
      }
      throw e;
    }
  }

  /** @internal Spawns the process and starts copying its output. */
  async spawn(): Promise<void> {
    if (this.running) throw new Error(`node ${this.nodeId} is already running`);
    this.#file ??= await Deno.open(this.logFile, {
      create: true,
      append: true,
    });
    // -q keeps Deno's own notes out of the node's JSON log stream.
    const argv = [
      Deno.execPath(),
      "run",
      "-q",
      `-P=${this.#opts.permissionSet ?? "node-test"}`,
      // The node's heap as `deno task node` sets it (node/launch.ts adds
      // them itself when it is the entry); later --v8-flags in denoFlags win.
      ...(this.#opts.entry === undefined
        ? nodeHeapFlags(this.#env.DENO_V8_FLAGS)
        : []),
      ...(this.#opts.denoFlags ?? []),
      this.#opts.entry ?? "node/main.ts",
    ];
    const limit = this.#opts.openFileLimit;
    const [cmd, ...args] = limit === undefined ? argv : [
      "sh",
      "-c",
      `ulimit -n ${limit} && exec "$0" "$@"`,
      ...argv,
    ];
    const child = new Deno.Command(cmd, {
      args,
      cwd: REPO_ROOT,
      env: this.#env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#exited = null;
    this.#note(`--- spawned pid ${child.pid}`);
    this.#pumps = [
      this.#pump(child.stderr, (line) => {
        this.#logs.push(parseLine(line));
        return line;
      }),
      this.#pump(child.stdout, (line) => `[stdout] ${line}`),
    ];
    this.#status = child.status.then(async (s) => {
      // A child of the node (a plugin) may hold the pipes open after the node
      // died: give the output 2 s to drain, then stop reading.
      const pumps = Promise.all(this.#pumps);
      if (!await settlesWithin(pumps, 2000)) {
        for (const r of this.#readers) r.cancel().catch(() => {});
        await pumps;
      }
      this.#readers = [];
      if (this.#child === child) this.#exited = s;
      this.#note(`--- pid ${child.pid} exited: ${describe(s)}`);
      return s;
    });
  }

  #note(line: string): void {
    this.#file?.writeSync(new TextEncoder().encode(`${line}\n`));
  }

  #pump(
    stream: ReadableStream<Uint8Array>,
    onLine: (line: string) => string,
  ): Promise<void> {
    const reader = stream.getReader();
    this.#readers.push(reader);
    return pumpLines(reader, (line) => this.#note(onLine(line)));
  }

  /**
   * Waits until `<prefix>nodes/<node_id>` holds this process's registration
   * (its `pid`); fails at once, with the log tail, if the process exits.
   */
  async waitRegistered(
    timeoutMs = this.#opts.readyTimeoutMs ?? 30_000,
  ): Promise<void> {
    const pid = this.pid;
    await waitFor(`node ${this.nodeId} (pid ${pid}) to register`, async () => {
      if (!this.running) {
        throw new StopWaiting(
          `node ${this.nodeId} exited (${
            describe(this.#exited)
          }) before registering; log tail:\n${this.logTail()}`,
        );
      }
      const rec = await readNode(this.#etcd, this.nodeId, this.prefix);
      return rec?.value.pid === pid ? rec : notYet({ registered: rec });
    }, { timeoutMs, intervalMs: 100 }).catch((e) => {
      if (this.running) e.message += `\nlog tail:\n${this.logTail()}`;
      throw e;
    });
  }

  /** The last `n` stderr lines as text, for failure messages. */
  logTail(n = 30): string {
    return this.#logs.slice(-n).map((l) => JSON.stringify(l)).join("\n");
  }

  /** Sends `signal` (SIGKILL: a crash; SIGSTOP/SIGCONT: a frozen node) without waiting. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.running) this.#child!.kill(signal);
  }

  /** SIGTERM, SIGKILL after the grace period; resolves with the exit status. */
  async stop(
    graceMs = this.#opts.stopGraceMs ?? 5000,
  ): Promise<Deno.CommandStatus | null> {
    if (!this.#child) return null;
    if (this.running) {
      try {
        this.#child.kill("SIGCONT"); // a frozen node cannot act on SIGTERM
        this.#child.kill("SIGTERM");
        if (!await settlesWithin(this.#status!, graceMs)) this.kill("SIGKILL");
      } catch (e) {
        // Exited already; `running` waits for its pipes to drain (up to 2 s).
        if (!(e instanceof TypeError)) throw e;
      }
    }
    return await within(
      `node ${this.nodeId} (pid ${this.#child.pid}) to exit`,
      this.#status!,
      10_000,
    );
  }

  /** Stops the node and closes its log file; the data dir stays. */
  async close(): Promise<void> {
    await this.stop();
    this.#file?.close();
    this.#file = null;
  }

  /** Stops the current process and starts a new one with the same configuration and data dir. */
  async restart(
    options: { waitRegistered?: boolean } = {},
  ): Promise<void> {
    await this.stop();
    await this.spawn();
    if (options.waitRegistered ?? true) await this.waitRegistered();
  }

  /** Stops the node, closes its log file and removes a temp data dir. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
    if (this.#ownsDataDir) {
      await Deno.remove(this.dataDir, { recursive: true }).catch(() => {});
    }
  }
}

/** What `startNode` needs of the etcd handle: a client and its endpoint. */
export interface EtcdLike extends HasClient {
  readonly endpoint: string;
}

/**
 * Starts a node against `etcd` and waits until it is registered (a read of
 * its key, not a log line). Use with `await using`.
 */
export async function startNode(
  etcd: EtcdLike,
  opts: NodeOptions,
): Promise<NodeProc> {
  const ownsDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await makeTempDir(`boi-${opts.nodeId}-`);
  const pickPort = opts.httpPort === undefined;
  const logFile = await artifactPath("nodes", opts.nodeId);
  for (let attempt = 1;; attempt++) {
    const httpAddr = `${opts.httpHost ?? "127.0.0.1"}:${
      pickPort ? freePort() : opts.httpPort
    }`;
    const env = nodeEnv(etcd.endpoint, opts, httpAddr, dataDir);
    if (opts.region !== undefined) env.BOI_REGION = opts.region;
    const node = new NodeProc(
      etcd,
      opts,
      childEnv({ ...env, ...opts.env }),
      httpAddr,
      dataDir,
      ownsDataDir,
      logFile,
    );
    await node.spawn();
    if (!(opts.waitRegistered ?? true)) return node;
    try {
      await node.waitRegistered();
      return node;
    } catch (e) {
      await node.close();
      const clash = node.logs().some((l) =>
        /AddrInUse|address already in use/i.test(JSON.stringify(l))
      );
      if (pickPort && clash && attempt < 5) continue;
      if (ownsDataDir) {
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      }
      throw e;
    }
  }
}
