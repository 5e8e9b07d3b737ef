/** `run` and `cli`: child processes with exit codes, output, timeouts and a hermetic environment. */
import assert from "node:assert/strict";
import { cli, cliExists, run } from "./mod.ts";

Deno.test("run: exit code, stdout, stderr and stdin", async () => {
  const r = await run("sh", [
    "-c",
    'read line; echo "out:$line"; echo err >&2; exit 3',
  ], { stdin: "hi\n" });
  assert.equal(r.code, 3, r.explain());
  assert.equal(r.stdout, "out:hi\n");
  assert.equal(r.stderr, "err\n");
  assert.match(r.explain(), /exit 3/);
  assert.deepEqual(
    (await run("sh", ["-c", `echo '{"a":[1]}'`])).json(),
    { a: [1] },
  );
  assert.throws(() => r.json(), /not one JSON document[\s\S]*out:hi/);
});

Deno.test("run: a command past its timeout is killed and the error shows its output", async () => {
  const t0 = Date.now();
  await assert.rejects(
    run("sh", ["-c", "echo started; sleep 30"], { timeoutMs: 300 }),
    /did not finish within 300 ms[\s\S]*started/,
  );
  assert.ok(Date.now() - t0 < 5000);
});

Deno.test("run: children get no BOI_* variables from the test's environment", async () => {
  const before = Deno.env.get("BOI_NODE_ID");
  Deno.env.set("BOI_NODE_ID", "leaked");
  try {
    const r = await run("sh", ["-c", 'echo "[$BOI_NODE_ID][$X]"'], {
      env: { X: "given" },
    });
    assert.equal(r.stdout, "[][given]\n");
  } finally {
    if (before === undefined) Deno.env.delete("BOI_NODE_ID");
    else Deno.env.set("BOI_NODE_ID", before);
  }
});

Deno.test({
  name: "cli: runs cli.ts and returns its exit code and output",
  ignore: !cliExists(),
  async fn() {
    const help = await cli(null, ["--help"]);
    assert.equal(help.code, 0, help.explain());
    assert.match(help.stdout + help.stderr, /dispatch/, help.explain());
    assert.deepEqual(help.command.slice(1, 5), [
      "run",
      "-q",
      "-P=cli",
      "cli.ts",
    ]);
    assert.doesNotMatch(
      help.stderr,
      /experimental/,
      "Deno's own notes are kept out",
    );
  },
});
