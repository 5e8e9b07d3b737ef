/** GrpcWorkspace against the git reference plugin, run by the supervisor. */
import assert from "node:assert/strict";
import { GrpcWorkspace } from "./grpc_workspace.ts";
import { PluginSupervisor } from "../plugins/supervisor.ts";
import { pluginArgv, tempDir } from "../../plugins/test_util.ts";

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
