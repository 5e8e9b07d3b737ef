/**
 * Reference workspace: a fresh directory per task attempt under
 * `BOI_WORKSPACE_ROOT` (default `<plugin data dir>/work`), wrapping
 * node/exec/dir_workspace.ts.
 *
 * Run: `deno run -P=plugin --allow-net=unix:<socket> plugins/workspace_dir.ts`
 * (the root must lie under `.boi/` or `/tmp`, else add `--allow-read`/`--allow-write` for it).
 * @module
 */
import { DirWorkspace } from "../node/exec/dir_workspace.ts";
import type { PluginHandlers, Workspace } from "./sdk/mod.ts";
import {
  absolutePath,
  insideRoot,
  pathSegment,
  pluginEnv,
  servePlugin,
} from "./sdk/mod.ts";

/** Handlers over a {@linkcode DirWorkspace} rooted at `root`. */
export function dirWorkspaceHandlers(
  root: string,
): PluginHandlers<Workspace> {
  const abs = absolutePath(root);
  const ws = new DirWorkspace(abs);
  return {
    prepare(req) {
      pathSegment("spec_id", req.spec_id);
      pathSegment("task_id", req.task_id);
      return ws.prepare(req);
    },
    cleanup(req) {
      // Never remove what core did not get from us.
      return ws.cleanup({ ...req, workdir: insideRoot(abs, req.workdir) });
    },
  };
}

if (import.meta.main) {
  const root = Deno.env.get("BOI_WORKSPACE_ROOT") ||
    `${pluginEnv().data_dir}/work`;
  await servePlugin({
    kind: "workspace",
    name: "workspace_dir",
    version: "1.0.0",
    ...dirWorkspaceHandlers(root),
  });
}
