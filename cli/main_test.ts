import assert from "node:assert/strict";
import { runCli } from "./test_util.ts";

Deno.test("usage errors exit 2 with one line on stderr", async () => {
  for (
    const [args, fragment] of [
      [["bogus"], "unknown command 'bogus'"],
      [["status", "--bogus"], "unknown option '--bogus'"],
      [["dispatch"], "missing required argument 'spec.yaml'"],
      [["tasks", "get", "Not.Valid"], "task id must match"],
      [["tasks", "list", "--state", "nope"], "state must be one of"],
      [["tasks", "cancel", "a.b", "--timeout", "soon"], 'like "90s"'],
      [["dispatch", "x.yaml", "--timeout", "5s"], "--timeout needs --wait"],
      [
        ["dispatch", "x.yaml", "--wait", "--timeout", "-1s"],
        "positive duration",
      ],
      [["status", "--etcd", ","], "--etcd: etcd endpoints must be"],
      [
        ["status", "--prefix", "boi"],
        '--prefix: key prefix must start and end with "/"',
      ],
      [["status", "Bad.Id"], "spec id must match"],
    ] as const
  ) {
    const r = await runCli([...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.equal(r.out, "");
    assert.equal(r.err.trimEnd().split("\n").length, 1, r.err);
    assert.ok(r.err.includes(fragment), `${args.join(" ")}: ${r.err}`);
  }
});

Deno.test("bad environment settings are usage errors too", async () => {
  const r = await runCli(["status"], { BOI_KEY_PREFIX: "nope" });
  assert.equal(r.code, 2);
  assert.match(r.err, /key prefix must start and end/);
});

Deno.test("help exits 0; a bare group shows help and exits 2", async () => {
  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /dispatch/);
  assert.match(help.out, /status/);
  const group = await runCli(["tasks"]);
  assert.equal(group.code, 2);
  assert.match(group.err, /list/);
});

Deno.test("spec errors exit 1 before etcd is touched", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/s.yaml`, "name: x\ntasks: [{id: a}]\n");
    // An endpoint nobody listens on: reaching etcd would be exit 3.
    const r = await runCli([
      "dispatch",
      `${dir}/s.yaml`,
      "--etcd",
      "127.0.0.1:1",
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.err, `${dir}/s.yaml: tasks[0] (id a) needs run or prompt\n`);
    const missing = await runCli(["dispatch", `${dir}/none.yaml`]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /none\.yaml: cannot read: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
