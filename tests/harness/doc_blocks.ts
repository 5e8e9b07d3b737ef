/**
 * Running a document's shell blocks as written: the ```bash blocks between
 * `<!-- name:begin -->` and `<!-- name:end -->` markers, joined into one
 * script and run by one bash, so the docs tests check the very commands a
 * reader copies.
 */
import { REPO_ROOT } from "./paths.ts";

/** The bash blocks between the `name` markers of `markdown`, in order, as one script. */
export function markedScript(markdown: string, name: string): string {
  const begin = markdown.indexOf(`<!-- ${name}:begin -->`);
  const end = markdown.indexOf(`<!-- ${name}:end -->`);
  if (begin < 0 || end < begin) throw new Error(`${name} markers missing`);
  const blocks = [
    ...markdown.slice(begin, end).matchAll(/```bash\n([\s\S]*?)```/g),
  ];
  return blocks.map((m) => m[1]).join("\n");
}

/** {@linkcode markedScript} of the repo's `doc` (a path from the repo root, e.g. "docs/operations.md"). */
export async function docScript(doc: string, name: string): Promise<string> {
  return markedScript(await Deno.readTextFile(`${REPO_ROOT}/${doc}`), name);
}

/** The first of `bins` not on PATH (the test is skipped loudly for it), or undefined. */
export function missingTool(bins: string[]): string | undefined {
  return bins.find((bin) =>
    new Deno.Command("sh", { args: ["-c", `command -v ${bin}`] }).outputSync()
      .code !== 0
  );
}

/** Options of {@linkcode runScript}. */
export interface ScriptOptions {
  /** The script's working directory. */
  cwd: string;
  /** Its environment (added to the test's own unless `clearEnv`). */
  env: Record<string, string>;
  /**
   * Start from an empty environment: `env` is all the script gets.
   * @default false
   */
  clearEnv?: boolean;
  /**
   * Kill the script's process group after this long.
   * @default 240000
   */
  timeoutMs?: number;
}

/** What a script printed, and how it exited. */
export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `script` under `set -euo pipefail` in its own process group, and
 * SIGKILLs that group when it ends (or times out): nodes and etcd a failed
 * script left behind do not outlive the test.
 */
export async function runScript(
  script: string,
  opts: ScriptOptions,
): Promise<ScriptResult> {
  const child = new Deno.Command("bash", {
    args: ["-c", `set -euo pipefail\n${script}`],
    cwd: opts.cwd,
    env: opts.env,
    clearEnv: opts.clearEnv ?? false,
    stdout: "piped",
    stderr: "piped",
    detached: true, // its own group: a failure is cleaned up with one kill
  }).spawn();
  const timer = setTimeout(() => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch { /* gone */ }
  }, opts.timeoutMs ?? 240_000);
  // Read both pipes while waiting for bash itself, not for the pipes' EOF:
  // nodes the script started in the background hold them open, so a failed
  // step would otherwise be reported only when the timer fires.
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  const { code } = await child.status;
  clearTimeout(timer);
  try {
    Deno.kill(-child.pid, "SIGKILL"); // anything the script left behind
  } catch { /* nothing left */ }
  return { code, stdout: await stdout, stderr: await stderr };
}

/** The last `lines` lines of `path` headed `--- label`, for a failure message; null if unreadable. */
export async function fileTail(
  path: string,
  label: string,
  lines = 15,
): Promise<string | null> {
  return await Deno.readTextFile(path).then(
    (t) => `--- ${label}\n${t.split("\n").slice(-lines).join("\n")}`,
    () => null,
  );
}
