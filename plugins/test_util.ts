/**
 * Fixtures shared by the plugin and supervisor tests: the reference plugins'
 * commands with their documented permissions, and a plugin process started by
 * hand (without the supervisor) for SDK-level checks.
 * @module
 */
import { fileURLToPath } from "node:url";
import { within } from "../tests/harness/wait.ts";

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
