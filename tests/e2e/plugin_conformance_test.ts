/**
 * `boi plugin test` (SPEC §7): the conformance checks pass every reference
 * plugin and fail a broken one with a reason; real plugin processes.
 */
import assert from "node:assert/strict";
import { cli, makeTempDir, run } from "../harness/mod.ts";
import { pluginArgv, POOL_FLAGS } from "./plugin_util.ts";

const REFERENCE: [string, string, string[], Record<string, string>][] = [
  ["workspace", "workspace_dir.ts", [], {}],
  ["workspace", "workspace_git.ts", ["--allow-run=git"], {}],
  ["pool", "pool_local.ts", POOL_FLAGS, {}],
  ["router", "router_passthrough.ts", [], {}],
  ["hooks", "hooks_jsonl.ts", [], {}],
];

function pluginTest(
  kind: string,
  argv: string[],
  env: Record<string, string> = {},
) {
  return run(
    Deno.execPath(),
    [
      "run",
      "-q",
      "-P=plugin-test",
      "cli.ts",
      "plugin",
      "test",
      "--kind",
      kind,
      "--",
      ...argv,
    ],
    { env, timeoutMs: 90_000 },
  );
}

Deno.test("boi plugin test passes every reference plugin and fails a broken one with a reason", async () => {
  // workspace_git needs a repository to take worktrees of.
  const repo = await makeTempDir("boi-git-");
  const git = (...args: string[]) =>
    new Deno.Command("git", {
      args: ["-C", repo, ...args],
      env: {
        GIT_AUTHOR_NAME: "t",
        GIT_AUTHOR_EMAIL: "t@t",
        GIT_COMMITTER_NAME: "t",
        GIT_COMMITTER_EMAIL: "t@t",
      },
    }).output();
  await git("init", "-q");
  await Deno.writeTextFile(`${repo}/a.txt`, "a\n");
  await git("add", "a.txt");
  await git("commit", "-qm", "a");

  const t0 = Date.now();
  const results = await Promise.all(
    REFERENCE.map(([kind, script, extra, env]) =>
      pluginTest(kind, pluginArgv(script, extra), {
        ...env,
        BOI_WORKSPACE_REPO: repo,
      })
    ),
  );
  for (const [i, r] of results.entries()) {
    assert.equal(r.code, 0, `${REFERENCE[i][1]}: ${r.explain()}`);
    assert.match(r.stdout, /^ok: \d+ checks passed$/m, r.explain());
    assert.doesNotMatch(r.stdout, /✗/, r.explain());
    assert.match(r.stdout, /^✓ lifecycle: handshake/m, r.explain());
  }
  console.log(`5 reference plugins passed in ${Date.now() - t0} ms`);

  // A pool that crashes on its 4th call (Handshake, Health, then the first Spawn).
  const crash = await pluginTest(
    "pool",
    pluginArgv("mock.ts", POOL_FLAGS),
    { BOI_MOCK_CRASH_AFTER: "3" },
  );
  assert.equal(crash.code, 1, crash.explain());
  assert.match(crash.stdout, /^✗ .+: .+$/m, crash.explain());
  assert.match(crash.stdout, /^FAILED: \d+ of \d+ checks failed$/m);

  // One that never prints BOI_READY: the reason names the timeout.
  const noReady = await run(
    Deno.execPath(),
    [
      "run",
      "-q",
      "-P=plugin-test",
      "cli.ts",
      "plugin",
      "test",
      "--kind",
      "router",
      "--ready-timeout",
      "1500",
      "--",
      ...pluginArgv("mock.ts"),
    ],
    { env: { BOI_MOCK_NO_READY: "1" } },
  );
  assert.equal(noReady.code, 1, noReady.explain());
  assert.match(
    noReady.stdout,
    /^✗ lifecycle: prints BOI_READY: .*ready_timeout after 1500 ms$/m,
  );

  // Under the narrow `cli` permission set it refuses with the way out.
  const narrow = await cli(null, [
    "plugin",
    "test",
    "--kind",
    "router",
    ...pluginArgv("mock.ts"),
  ]);
  assert.equal(narrow.code, 1, narrow.explain());
  assert.match(narrow.stderr, /needs the run permission.*plugin-test/);
});
