import assert from "node:assert/strict";
import type { Io } from "./context.ts";
import { main } from "./main.ts";

/** Runs the CLI in-process with captured output and a fixed environment. */
async function run(args: string[], env: Record<string, string> = {}) {
  let out = "";
  let err = "";
  const io: Io = {
    out: (t) => out += t,
    err: (t) => err += t,
    isTty: false,
    columns: () => 0,
    env: (name) => env[name],
    now: () => 0,
  };
  const code = await main(args, io);
  return { code, out, err };
}

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
    const r = await run([...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.equal(r.out, "");
    assert.equal(r.err.trimEnd().split("\n").length, 1, r.err);
    assert.ok(r.err.includes(fragment), `${args.join(" ")}: ${r.err}`);
  }
});

Deno.test("bad environment settings are usage errors too", async () => {
  const r = await run(["status"], { BOI_KEY_PREFIX: "nope" });
  assert.equal(r.code, 2);
  assert.match(r.err, /key prefix must start and end/);
});

Deno.test("help exits 0; a bare group shows help and exits 2", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /dispatch/);
  assert.match(help.out, /status/);
  const group = await run(["tasks"]);
  assert.equal(group.code, 2);
  assert.match(group.err, /list/);
});

Deno.test("spec errors exit 1 before etcd is touched", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/s.yaml`, "name: x\ntasks: [{id: a}]\n");
    // An endpoint nobody listens on: reaching etcd would be exit 3.
    const r = await run(["dispatch", `${dir}/s.yaml`, "--etcd", "127.0.0.1:1"]);
    assert.equal(r.code, 1);
    assert.equal(r.err, `${dir}/s.yaml: tasks[0] (id a) needs run or prompt\n`);
    const missing = await run(["dispatch", `${dir}/none.yaml`]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /none\.yaml: cannot read: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
