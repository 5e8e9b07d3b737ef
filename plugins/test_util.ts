/**
 * Fixtures shared by the plugin and supervisor tests: the reference plugins'
 * commands with their documented permissions, and a plugin process started by
 * hand (without the supervisor) for SDK-level checks.
 * @module
 */
import { fileURLToPath } from "node:url";
import { within } from "../tests/harness/wait.ts";
import {
  CORE_CAPABILITIES,
  PluginConnection,
} from "../node/exec/grpc_client.ts";
import { PROTO_MAJOR, PROTO_MINOR } from "../proto/mod.ts";
import type { PluginKind } from "../proto/mod.ts";

/** The repository root: plugins run from here so `-P=plugin` finds deno.json. */
export const REPO: string = fileURLToPath(new URL("../", import.meta.url))
  .replace(/\/$/, "");

/** What the reference pool's workers inherit, as an `--allow-env` list. */
export const POOL_ENV =
  "--allow-env=BOI_*,GRPC_*,PATH,HOME,LANG,LC_ALL,TMPDIR,TZ,USER,SHELL";

/**
 * `deno run` of `plugins/<script>` with the plugin permission set, net only
 * for its socket (and `net` hosts), plus `extra` flags. `{socket}` is filled
 * by the supervisor.
 */
export function pluginArgv(
  script: string,
  extra: string[] = [],
  options: { socket?: string; net?: string[] } = {},
): string[] {
  const net = [`unix:${options.socket ?? "{socket}"}`, ...(options.net ?? [])];
  return [
    Deno.execPath(),
    "run",
    "-q",
    "-P=plugin",
    `--allow-net=${net.join(",")}`,
    ...extra,
    `${REPO}/plugins/${script}`,
  ];
}

/** A temp dir under /tmp, where the `plugin` permission set may write. */
export function tempDir(prefix: string): Promise<string> {
  return Deno.makeTempDir({ dir: "/tmp", prefix });
}

/** Lines a stream produced so far, and a way to wait for one. */
export class Lines {
  readonly lines: string[] = [];
  #waiters = new Set<() => void>();
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      let buf = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          this.lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
          for (const w of this.#waiters) w();
        }
      }
      if (buf) this.lines.push(buf);
      for (const w of this.#waiters) w();
    })();
  }

  /** Resolves with the first line matching `pred`; rejects after `ms` or at EOF. */
  waitFor(what: string, pred: (line: string) => boolean, ms = 10_000) {
    const found = () => this.lines.find(pred);
    return within(
      `a line with ${what}; got:\n${this.lines.join("\n")}`,
      new Promise<string>((resolve, reject) => {
        const check = () => {
          const l = found();
          if (l !== undefined) {
            this.#waiters.delete(check);
            resolve(l);
          }
        };
        this.#waiters.add(check);
        check();
        this.done.then(() => {
          const l = found();
          if (l === undefined) reject(new Error(`EOF before ${what}`));
        });
      }),
      ms,
    );
  }
}

/** A plugin process started by hand, stdin piped like the supervisor does. */
export class PluginProcess {
  readonly child: Deno.ChildProcess;
  readonly stdout: Lines;
  readonly stderr: Lines;

  constructor(argv: string[], env: Record<string, string>) {
    this.child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: REPO,
      env: { NO_COLOR: "1", ...env },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.stdout = new Lines(this.child.stdout);
    this.stderr = new Lines(this.child.stderr);
  }

  /** Waits for the `BOI_READY` line on stdout. */
  async ready(ms = 10_000): Promise<void> {
    await this.stdout.waitFor("BOI_READY", (l) => l === "BOI_READY", ms);
  }

  /** JSON log lines from stderr. */
  logs(): Record<string, unknown>[] {
    return this.stderr.lines.flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
  }

  /** Waits for the exit (SIGKILL after `ms`, so a test never leaves it behind). */
  async exit(ms = 10_000): Promise<Deno.CommandStatus> {
    try {
      return await within("plugin exit", this.child.status, ms);
    } catch (e) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // gone
      }
      await this.child.status;
      throw e;
    } finally {
      await this.child.stdin.close().catch(() => {});
      await Promise.all([this.stdout.done, this.stderr.done]);
    }
  }

  /** Closes stdin (the core "dies") and waits for the exit. */
  async closeStdin(ms = 10_000): Promise<Deno.CommandStatus> {
    await this.child.stdin.close().catch(() => {});
    return await this.exit(ms);
  }
}

/**
 * Starts `plugins/<script>` as a `kind` plugin on a socket in a temp dir,
 * connects and handshakes as core does, runs `fn`, then closes and cleans up.
 */
export async function withPlugin(
  script: string,
  kind: PluginKind,
  opts: { extra?: string[]; env?: Record<string, string> },
  fn: (
    conn: PluginConnection,
    p: PluginProcess,
    socket: string,
    dir: string,
  ) => Promise<void>,
): Promise<void> {
  const dir = await tempDir(`boi-${kind}-`);
  const socket = `${dir}/p.sock`;
  const p = new PluginProcess(pluginArgv(script, opts.extra, { socket }), {
    BOI_PLUGIN_SOCKET: socket,
    BOI_PLUGIN_ID: `${kind}-test-1`,
    BOI_PLUGIN_KIND: kind,
    BOI_PLUGIN_DATA_DIR: dir,
    ...opts.env,
  });
  const conn = new PluginConnection(kind, socket);
  try {
    await p.ready();
    await conn.handshake({
      core_version: "test",
      proto_major: PROTO_MAJOR,
      proto_minor: PROTO_MINOR,
      capabilities: [...CORE_CAPABILITIES],
    });
    await fn(conn, p, socket, dir);
  } finally {
    conn.close();
    await p.closeStdin().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
