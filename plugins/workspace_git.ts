/**
 * Reference workspace on git: a detached worktree per task attempt
 * (`git worktree add --detach`) of the repository `BOI_WORKSPACE_REPO` at
 * `BOI_WORKSPACE_REF` (default `HEAD`), under `BOI_WORKSPACE_ROOT`
 * (default `<plugin data dir>/worktrees`). Tasks get `BOI_GIT_COMMIT`.
 *
 * Run: `deno run -P=plugin --allow-net=unix:<socket> --allow-run=git plugins/workspace_git.ts`
 * (git itself runs outside Deno's sandbox; the root must lie under `.boi/` or `/tmp`).
 * @module
 */
import type { PluginHandlers, Workspace } from "./sdk/mod.ts";
import {
  absolutePath,
  insideRoot,
  pathSegment,
  pluginEnv,
  PluginError,
  removeTree,
  servePlugin,
} from "./sdk/mod.ts";
import type { HealthResponse } from "./sdk/mod.ts";

/** Options of {@linkcode gitWorkspaceHandlers}. */
export interface GitWorkspaceOptions {
  /** The repository worktrees are made from. */
  repo: string;
  /** Directory the worktrees go under. */
  root: string;
  /**
   * Commit-ish each worktree starts at.
   * @default "HEAD"
   */
  ref?: string;
}

/** Workspace handlers plus a health check that the repository is still there. */
export interface GitWorkspace extends PluginHandlers<Workspace> {
  health(): Promise<HealthResponse>;
}

async function git(args: string[]): Promise<string> {
  const out = await new Deno.Command("git", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new PluginError("INTERNAL", `git ${args.join(" ")}: ${err}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Worktree-per-task handlers; git calls are serialized (they share the repo's lock). */
export function gitWorkspaceHandlers(opts: GitWorkspaceOptions): GitWorkspace {
  const repo = absolutePath(opts.repo);
  const root = absolutePath(opts.root);
  const ref = opts.ref ?? "HEAD";
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => {});
    return run;
  };
  const remove = async (path: string) => {
    try {
      // Twice: a worktree left locked by a killed `worktree add` too.
      await git(["-C", repo, "worktree", "remove", "-f", "-f", path]);
    } catch {
      // Not a registered worktree (any more), or git could not unlink in a
      // directory the task made read-only: remove the files, forget the entry.
      await removeTree(path).catch(() => {});
      await git(["-C", repo, "worktree", "prune"]).catch(() => {});
    }
  };
  return {
    prepare: (req, ctx) =>
      serial(async () => {
        // Prepares wait their turn here; one the core has given up on
        // (its deadline) is not built, or its worktree would leak.
        if (ctx.signal.aborted) {
          throw new PluginError(
            "UNAVAILABLE",
            `prepare of ${req.task_id}: the caller gave up before its turn (${
              String(ctx.signal.reason)
            })`,
          );
        }
        const dir = `${root}/${pathSegment("spec_id", req.spec_id)}`;
        const workdir = `${dir}/${pathSegment("task_id", req.task_id)}`;
        // A previous attempt's leftovers must not leak into this one.
        if (await exists(workdir)) await remove(workdir);
        await Deno.mkdir(dir, { recursive: true });
        // `-f -f`: the path may still be registered (a crash mid-remove, a
        // wiped root) and even locked (a killed `worktree add`); without it
        // every later attempt of this task on this node failed here.
        await git([
          "-C",
          repo,
          "worktree",
          "add",
          "-f",
          "-f",
          "--detach",
          workdir,
          ref,
        ]);
        const commit = await git(["-C", workdir, "rev-parse", "HEAD"]);
        return { workdir, env: { BOI_GIT_COMMIT: commit } };
      }),
    cleanup: (req) =>
      serial(async () => {
        const workdir = insideRoot(root, req.workdir);
        if (await exists(workdir)) await remove(workdir);
      }),
    async health() {
      try {
        await git(["-C", repo, "rev-parse", "--verify", `${ref}^{commit}`]);
        return { ok: true, detail: `${repo} ${ref}` };
      } catch (e) {
        return { ok: false, detail: (e as Error).message };
      }
    },
  };
}

if (import.meta.main) {
  const repo = Deno.env.get("BOI_WORKSPACE_REPO") ?? "";
  if (repo === "") {
    console.error(
      "workspace_git: BOI_WORKSPACE_REPO must name a git repository",
    );
    Deno.exit(2);
  }
  const ws = gitWorkspaceHandlers({
    repo,
    root: Deno.env.get("BOI_WORKSPACE_ROOT") ||
      `${pluginEnv().data_dir}/worktrees`,
    ref: Deno.env.get("BOI_WORKSPACE_REF") || "HEAD",
  });
  const first = await ws.health();
  if (!first.ok) {
    console.error(`workspace_git: ${first.detail}`);
    Deno.exit(2);
  }
  await servePlugin({
    kind: "workspace",
    name: "workspace_git",
    version: "1.0.0",
    capabilities: ["git"],
    ...ws,
  });
}
