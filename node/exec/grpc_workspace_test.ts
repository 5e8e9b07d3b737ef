/** GrpcWorkspace against the git reference plugin, run by the supervisor. */
import assert from "node:assert/strict";
import { GrpcWorkspace } from "./grpc_workspace.ts";
import { PluginSupervisor } from "../plugins/supervisor.ts";
import { pluginArgv, tempDir } from "../../plugins/test_util.ts";
import { gitWorkspaceHandlers } from "../../plugins/workspace_git.ts";
import type { CallContext } from "../../plugins/sdk/mod.ts";

async function git(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", {
    args: ["-C", cwd, "-c", "user.name=t", "-c", "user.email=t@t", ...args],
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("GrpcWorkspace + workspace_git: a detached worktree per task, gone after Cleanup", async () => {
  const dir = await tempDir("boi-ws-");
  const repo = `${dir}/repo`;
  await Deno.mkdir(repo);
  await git(repo, "init", "-q");
  await Deno.writeTextFile(`${repo}/README`, "hello\n");
  await git(repo, "add", "README");
  await git(repo, "commit", "-qm", "first");
  const head = await git(repo, "rev-parse", "HEAD");
  const sup = new PluginSupervisor({
    plugin: {
      name: "workspace",
      kind: "workspace",
      argv: pluginArgv("workspace_git.ts", ["--allow-run=git"]),
      env: { BOI_WORKSPACE_REPO: repo },
    },
    node_id: "n1",
    data_dir: `${dir}/data`,
    ready_timeout_ms: 5000,
    log: { log() {} },
  });
  try {
    assert.equal((await sup.start()).state, "ready");
    const ws = new GrpcWorkspace({ connection: () => sup.connection() });
    const ids = { spec_id: "s", task_id: "s.t" };
    const a = await ws.prepare({ ...ids, spec_yaml: "", hints: {} });
    assert.equal(a.workdir, `${sup.pluginDataDir}/worktrees/s/s.t`);
    assert.deepEqual(a.env, { BOI_GIT_COMMIT: head });
    assert.equal(await Deno.readTextFile(`${a.workdir}/README`), "hello\n");
    await Deno.writeTextFile(`${a.workdir}/junk`, "x");

    // A second attempt starts clean.
    const b = await ws.prepare({ ...ids, spec_yaml: "", hints: {} });
    assert.equal(b.workdir, a.workdir);
    await assert.rejects(Deno.stat(`${b.workdir}/junk`), Deno.errors.NotFound);

    await ws.cleanup({ ...ids, workdir: b.workdir });
    await assert.rejects(Deno.stat(b.workdir), Deno.errors.NotFound);

    // A worktree still registered whose directory is gone (a crash in the
    // middle of a remove, a wiped root), then one also left locked (a killed
    // `worktree add`): the next attempt still gets its worktree. Before,
    // every later Prepare of the task on this node failed ("missing but
    // already registered worktree").
    const c = await ws.prepare({ ...ids, spec_yaml: "", hints: {} });
    await Deno.remove(c.workdir, { recursive: true });
    const d = await ws.prepare({ ...ids, spec_yaml: "", hints: {} });
    assert.equal(await Deno.readTextFile(`${d.workdir}/README`), "hello\n");
    await git(repo, "worktree", "lock", d.workdir);
    await Deno.remove(d.workdir, { recursive: true });
    const e = await ws.prepare({ ...ids, spec_yaml: "", hints: {} });
    assert.equal(await Deno.readTextFile(`${e.workdir}/README`), "hello\n");
    await ws.cleanup({ ...ids, workdir: e.workdir });
    await assert.rejects(Deno.stat(e.workdir), Deno.errors.NotFound);
    assert.equal(
      (await git(repo, "worktree", "list", "--porcelain")).match(/^worktree /gm)
        ?.length,
      1,
    );
  } finally {
    await sup.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workspace_git: a Prepare its caller gave up on while it waited its turn builds nothing", async () => {
  const dir = await tempDir("boi-ws-");
  try {
    const repo = `${dir}/repo`;
    await Deno.mkdir(repo);
    await git(repo, "init", "-q");
    await git(repo, "commit", "-q", "--allow-empty", "-m", "first");
    const ws = gitWorkspaceHandlers({ repo, root: `${dir}/worktrees` });
    const given = new AbortController();
    const ctx = (signal: AbortSignal) =>
      ({ corr_id: "", rpc: "Prepare", signal }) as unknown as CallContext;
    const req = { spec_id: "s", task_id: "s.t", spec_yaml: "", hints: {} };
    const first = ws.prepare(
      { ...req, task_id: "s.first" },
      ctx(new AbortController().signal),
    );
    // Queued behind the first (git calls are serial); the core's deadline
    // passes while it waits.
    const late = Promise.resolve(ws.prepare(req, ctx(given.signal)));
    given.abort(new Error("deadline"));
    await first;
    await assert.rejects(late, /gave up before its turn/);
    await assert.rejects(
      Deno.stat(`${dir}/worktrees/s/s.t`),
      Deno.errors.NotFound,
    );
    assert.equal(
      (await git(repo, "worktree", "list", "--porcelain")).match(/^worktree /gm)
        ?.length,
      2,
      "the repository and the first task's worktree only",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
