/**
 * `runConformance` passes every reference plugin (and the mock as each kind)
 * and fails broken mocks with a reason naming what broke.
 */
import assert from "node:assert/strict";
import { type ConformanceResult, runConformance } from "./conformance.ts";
import { pluginArgv, POOL_ENV, tempDir } from "./test_util.ts";
import type { PluginKind } from "../proto/mod.ts";

function explain(r: ConformanceResult): string {
  return r.checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`)
    .join("\n");
}

function assertPasses(r: ConformanceResult): void {
  assert.ok(r.ok, explain(r));
  assert.ok(r.checks.length >= 6, explain(r));
}

/** The named check failed with a detail matching `why`; checks before it passed. */
function assertFailsAt(r: ConformanceResult, name: string, why: RegExp): void {
  assert.equal(r.ok, false, explain(r));
  const i = r.checks.findIndex((c) => !c.ok);
  assert.equal(r.checks[i].name, name, explain(r));
  assert.match(r.checks[i].detail, why, explain(r));
}

Deno.test("conformance: the reference plugins pass", async (t) => {
  await t.step("router_passthrough", async () => {
    assertPasses(
      await runConformance(pluginArgv("router_passthrough.ts"), "router"),
    );
  });
  await t.step("workspace_dir", async () => {
    assertPasses(
      await runConformance(pluginArgv("workspace_dir.ts"), "workspace"),
    );
  });
  await t.step("workspace_git", async () => {
    const repo = await tempDir("boi-conf-repo-");
    const git = (...args: string[]) =>
      new Deno.Command("git", { args: ["-C", repo, ...args] }).output();
    await git("init", "-q");
    await Deno.writeTextFile(`${repo}/README`, "hello\n");
    await git("add", "README");
    await git(
      "-c",
      "user.name=t",
      "-c",
      "user.email=t@t",
      "commit",
      "-qm",
      "x",
    );
    try {
      assertPasses(
        await runConformance(
          pluginArgv("workspace_git.ts", ["--allow-run=git"]),
          "workspace",
          { env: { BOI_WORKSPACE_REPO: repo } },
        ),
      );
      const list = await git("worktree", "list", "--porcelain");
      assert.equal(
        new TextDecoder().decode(list.stdout).match(/^worktree /gm)?.length,
        1,
        "no worktree left behind",
      );
    } finally {
      await Deno.remove(repo, { recursive: true });
    }
  });
  await t.step("pool_local", async () => {
    assertPasses(
      await runConformance(
        pluginArgv("pool_local.ts", ["--allow-run", POOL_ENV]),
        "pool",
      ),
    );
  });
  await t.step("hooks_jsonl", async () => {
    assertPasses(await runConformance(pluginArgv("hooks_jsonl.ts"), "hooks"));
  });
  // The checks' Allocate asks for os=linux: elsewhere the plugin rightly refuses.
  await t.step({
    name: "provisioner_local",
    ignore: Deno.build.os !== "linux",
    fn: async () => {
      assertPasses(
        await runConformance(
          pluginArgv("provisioner_local.ts", [
            `--allow-run=${Deno.execPath()}`,
            "--allow-env=BOI_*,GRPC_*,PATH,HOME,DENO_DIR,TMPDIR",
          ]),
          "provisioner",
          {
            // A stand-in for the node: the checks' token joins nothing.
            env: {
              BOI_PROVISION_NODE_ARGV: JSON.stringify([
                Deno.execPath(),
                "eval",
                "setInterval(() => {}, 1000)",
              ]),
            },
          },
        ),
      );
    },
  });
});

Deno.test("conformance: the mock passes as every kind", async (t) => {
  const kinds: PluginKind[] = [
    "workspace",
    "pool",
    "router",
    "provisioner",
    "hooks",
  ];
  for (const kind of kinds) {
    await t.step(kind, async () => {
      const extra = kind === "pool" ? ["--allow-run", POOL_ENV] : [];
      assertPasses(await runConformance(pluginArgv("mock.ts", extra), kind));
    });
  }
});

Deno.test("conformance: every transport is checked; a 1.0 plugin passes over plain RPCs", async (t) => {
  const plain = (r: ConformanceResult) =>
    r.checks.filter((c) => c.name.endsWith("(plain RPCs)"));
  await t.step(
    "a mux plugin: every RPC over the Mux stream, then again plain",
    async () => {
      const r = await runConformance(pluginArgv("mock.ts"), "workspace");
      assertPasses(r);
      const health = r.checks.filter((c) =>
        c.name.startsWith("lifecycle: health")
      );
      assert.deepEqual(
        health.map((c) => c.detail),
        ["ok (transport mux)", "ok (transport unary)"],
        explain(r),
      );
      assert.deepEqual(
        plain(r).map((c) => c.name),
        [
          "lifecycle: health (plain RPCs)",
          "workspace: Prepare (plain RPCs)",
          "workspace: Prepare again gives a fresh directory (plain RPCs)",
          "workspace: Cleanup (plain RPCs)",
          "workspace: spec_cache: a Prepare with only the digest of a spec sent before (plain RPCs)",
          "workspace: spec_cache: a digest never sent answers the retryable miss (plain RPCs)",
        ],
        explain(r),
      );
    },
  );
  await t.step("a 1.0 plugin (no mux): plain RPCs only", async () => {
    const r = await runConformance(
      pluginArgv("mock.ts", ["--allow-run", POOL_ENV]),
      "pool",
      { env: { BOI_MOCK_PROTO_MINOR: "0" } },
    );
    assertPasses(r);
    assert.match(r.checks[1].detail, /proto 1\.0, capabilities \[(?!.*mux)/);
    assert.equal(plain(r).length, 0, explain(r));
    assert.ok(
      r.checks.some((c) => c.detail === "ok (transport unary)"),
      explain(r),
    );
  });
});

Deno.test("conformance: broken mocks fail, with the reason", async (t) => {
  const mock = pluginArgv("mock.ts");
  await t.step("never prints BOI_READY", async () => {
    const t0 = Date.now();
    const r = await runConformance(mock, "hooks", {
      env: { BOI_MOCK_NO_READY: "1" },
      ready_timeout_ms: 1500,
    });
    assertFailsAt(r, "lifecycle: prints BOI_READY", /ready_timeout/);
    assert.ok(Date.now() - t0 < 2500 + 1000);
  });
  await t.step("speaks protocol major 2", async () => {
    assertFailsAt(
      await runConformance(mock, "router", {
        env: { BOI_MOCK_PROTO_MAJOR: "2" },
      }),
      "lifecycle: handshake",
      /proto_version_mismatch: plugin 2\.1, core 1\.1/,
    );
  });
  await t.step("crashes after 3 calls", async () => {
    const r = await runConformance(mock, "hooks", {
      env: { BOI_MOCK_CRASH_AFTER: "3" },
    });
    // The cut call ends UNAVAILABLE or INTERNAL, depending on the moment.
    assertFailsAt(r, "hooks: OnEvent acks each seq", /hooks plugin OnEvent: /);
    assert.ok(
      r.checks.some((c) =>
        c.name === "lifecycle: no crash during the checks" && !c.ok
      ),
      explain(r),
    );
  });
  await t.step("never answers Route", async () => {
    assertFailsAt(
      await runConformance(mock, "router", {
        env: { BOI_MOCK_HANG: "Route" },
        check_timeout_ms: 1000,
      }),
      "router: Route",
      /no answer within 1000 ms/,
    );
  });
  await t.step("announces spec_cache but ignores the digest", async () => {
    const dir = await tempDir("boi-conf-");
    try {
      assertFailsAt(
        await runConformance(pluginArgv("test_spec_recorder.ts"), "workspace", {
          env: {
            BOI_RECORDER_FILE: `${dir}/seen.jsonl`,
            BOI_RECORDER_SPEC_CACHE: "fake",
          },
        }),
        "workspace: spec_cache: a digest never sent answers the retryable miss",
        /expected FAILED_PRECONDITION "spec_cache_miss: …": got answered with workdir/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step("ignores stdin EOF", async () => {
    assertFailsAt(
      await runConformance(mock, "router", {
        env: { BOI_MOCK_IGNORE_STDIN: "1" },
        shutdown_grace_ms: 1000,
      }),
      "lifecycle: exits when stdin closes",
      /SIGKILLed/,
    );
  });
});
