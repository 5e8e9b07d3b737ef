import assert from "node:assert/strict";
import { runCli } from "./test_util.ts";

Deno.test("plugin: usage errors exit 2 with one line", async () => {
  for (
    const [args, fragment] of [
      [["plugin", "test", "--kind", "nope", "x"], "--kind must be one of"],
      [["plugin", "test", "--kind", "pool"], "missing required argument"],
      [["plugin", "restart", "Bad!"], "plugin name must match"],
      [["plugin", "list", "--node", "Bad!"], "--node must match"],
      [
        ["plugin", "test", "--kind", "pool", "--ready-timeout", "0", "x"],
        "positive integer",
      ],
    ] as const
  ) {
    const r = await runCli([...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.ok(r.err.includes(fragment), `${args.join(" ")}: ${r.err}`);
    assert.equal(r.err.trim().split("\n").length, 1, r.err);
  }
});

Deno.test("plugin test: the plugin's own flags pass through after the command", async () => {
  // A command that is not a plugin: it fails the first check with a reason,
  // and `-q`/`--json`-like flags after it belong to it, not to boi.
  const r = await runCli([
    "plugin",
    "test",
    "--kind",
    "router",
    "--ready-timeout",
    "2000",
    "sh",
    "-c",
    "echo not a plugin; exit 3",
    "--json",
  ]);
  assert.equal(r.code, 1, r.err);
  assert.match(
    r.out,
    /^✗ lifecycle: prints BOI_READY: .*exited before BOI_READY/m,
  );
  assert.match(r.out, /^FAILED: 1 of 1 checks failed$/m);
});

Deno.test("plugin test takes --etcd like every command (SPEC §11): not a usage error", async () => {
  const r = await runCli([
    "plugin",
    "test",
    "--etcd",
    "http://127.0.0.1:1",
    "--kind",
    "router",
    "--ready-timeout",
    "2000",
    "sh",
    "-c",
    "exit 3",
  ]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.out, /^FAILED: 1 of 1 checks failed$/m);
});
