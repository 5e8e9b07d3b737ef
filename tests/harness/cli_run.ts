/** Running short-lived commands (the CLI above all) with a timeout and captured output. */
import { DEFAULT_PREFIX } from "../../node/keys.ts";
import { childEnv, REPO_ROOT } from "./paths.ts";
import { settlesWithin } from "./wait.ts";

/** Options of {@linkcode run}. */
export interface RunOptions {
  /**
   * Working directory.
   * @default REPO_ROOT
   */
  cwd?: string;
  /** Extra environment on top of ours (minus `BOI_*`, see `childEnv`). */
  env?: Record<string, string>;
  /** Text written to the command's stdin, which is then closed; no stdin when absent. */
  stdin?: string;
  /**
   * SIGKILL the command and throw after this long.
   * @default 60000
   */
  timeoutMs?: number;
}

/** What a finished command did. */
export interface RunResult {
  /** The command line, for messages. */
  command: string[];
  /** Exit code (128 + n when killed by signal n). */
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Parses stdout as one JSON document; the error shows the whole run when it is not. */
  json<T = unknown>(): T;
  /** The command, its code and its output: pass as an assertion message. */
  explain(): string;
}

/** Reads a stream to the end as text; `cancel()` stops early (a grandchild may hold the pipe). */
function drain(stream: ReadableStream<Uint8Array>): {
  text: Promise<string>;
  cancel(): void;
} {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  const text = (async () => {
    let out = "";
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        out += dec.decode(value, { stream: true });
      }
    } catch { /* cancelled */ }
    return out + dec.decode();
  })();
  return { text, cancel: () => void reader.cancel().catch(() => {}) };
}

/**
 * Runs `cmd args...` to completion in its own process group; past
 * `timeoutMs` the whole group is SIGKILLed and the call throws with the output so far.
 */
export async function run(
  cmd: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv(options.env),
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    detached: true,
  }).spawn();
  const stdout = drain(child.stdout);
  const stderr = drain(child.stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  try {
    if (options.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(options.stdin)).catch(() => {});
      await w.close().catch(() => {});
    }
    const status = await child.status;
    // Output is complete once the pipes close; a detached grandchild may keep
    // them open, so after the exit give them a moment, then stop reading.
    const both = Promise.all([stdout.text, stderr.text]);
    if (!await settlesWithin(both, timedOut ? 200 : 2000)) {
      stdout.cancel();
      stderr.cancel();
    }
    const [out, err] = await both;
    const result = makeResult(
      [cmd, ...args],
      status.code,
      status.signal,
      out,
      err,
    );
    if (timedOut) {
      throw new Error(
        `command did not finish within ${timeoutMs} ms and was killed\n${result.explain()}`,
      );
    }
    return result;
  } finally {
    clearTimeout(timer);
  }
}

function makeResult(
  command: string[],
  code: number,
  signal: Deno.Signal | null,
  stdout: string,
  stderr: string,
): RunResult {
  const result: RunResult = {
    command,
    code,
    signal,
    stdout,
    stderr,
    json<T>(): T {
      try {
        return JSON.parse(stdout) as T;
      } catch (e) {
        throw new Error(
          `stdout is not one JSON document (${
            (e as Error).message
          })\n${result.explain()}`,
        );
      }
    },
    explain(): string {
      return [
        `$ ${command.join(" ")}`,
        `→ exit ${code}${signal ? ` (${signal})` : ""}`,
        `stdout:\n${indent(stdout)}`,
        `stderr:\n${indent(stderr)}`,
      ].join("\n");
    },
  };
  return result;
}

function indent(text: string): string {
  const t = text.length > 8000 ? `…${text.slice(-8000)}` : text;
  return t === "" ? "  (empty)" : t.replace(/\n$/, "").replace(/^/gm, "  ");
}

/** Where the CLI should find etcd: a handle from `startEtcd`, an endpoint list, or nothing. */
export type EtcdTarget = { endpoint: string } | string | null;

/** Options of {@linkcode cli}. */
export interface CliOptions extends RunOptions {
  /**
   * Key prefix; `--prefix` is passed only when it differs from the default.
   * @default "/boi/"
   */
  prefix?: string;
}

/**
 * Runs `deno run -q -P=cli cli.ts ...args --etcd <endpoint>` from the repo root
 * (no `--etcd` when `etcd` is null) and returns its exit code and output.
 */
export function cli(
  etcd: EtcdTarget,
  args: string[],
  options: CliOptions = {},
): Promise<RunResult> {
  // -q: Deno's own notes ("Permissions in the config file is experimental",
  // "Download ...") are not the CLI's output; errors still reach stderr.
  const full = ["run", "-q", "-P=cli", "cli.ts", ...args];
  const endpoint = typeof etcd === "string" ? etcd : etcd?.endpoint;
  if (endpoint !== undefined) full.push("--etcd", endpoint);
  const env = { ...options.env };
  if (options.prefix !== undefined && options.prefix !== DEFAULT_PREFIX) {
    full.push("--prefix", options.prefix);
    env.BOI_KEY_PREFIX = options.prefix;
  }
  return run(Deno.execPath(), full, { ...options, env });
}

/** True when the CLI entry exists (tests of it are skipped until it is written). */
export function cliExists(): boolean {
  try {
    return Deno.statSync(`${REPO_ROOT}/cli.ts`).isFile;
  } catch {
    return false;
  }
}
