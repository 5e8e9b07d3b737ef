/** Issue #2 e2e 9: bad specs are refused with file, path and reason, and nothing is written. */
import assert from "node:assert/strict";
import { cli, makeTempDir, startEtcd } from "../harness/mod.ts";

const BAD: Record<string, [string, RegExp]> = {
  yaml_error: ["name: x\ntasks: [\n  - id: a\n", /invalid YAML/],
  unknown_field: [
    "name: x\ntasks:\n  - id: a\n    run: 'true'\n    colour: red\n",
    /tasks\[0\]\.colour/,
  ],
  cycle: [
    "name: x\ntasks:\n  - id: a\n    run: 'true'\n    depends_on: [b]\n  - id: b\n    run: 'true'\n    depends_on: [a]\n",
    /cycle/,
  ],
  dangling: [
    "name: x\ntasks:\n  - id: a\n    run: 'true'\n    depends_on: [zz]\n",
    /tasks\[0\]\.depends_on.*zz/,
  ],
  bad_cap: [
    "name: x\ntasks:\n  - id: a\n    run: 'true'\n    requires: { gpu: a100 }\n",
    /tasks\[0\]\.requires.*gpu/,
  ],
  duplicate: [
    "name: x\ntasks:\n  - id: a\n    run: 'true'\n  - id: a\n    run: 'true'\n",
    /tasks\[1\]\.id.*already used/,
  ],
  bad_timeout: [
    "name: x\ntasks:\n  - id: a\n    run: 'true'\n    timeout: ten\n",
    /tasks\[0\]\.timeout.*"ten"/,
  ],
};

Deno.test("bad specs: exit 1 with file/path/reason on one line; the etcd prefix is unchanged", async () => {
  await using etcd = await startEtcd();
  const dir = await makeTempDir("boi-bad-");
  const revBefore = await etcd.revision();
  for (const [name, [yaml, re]] of Object.entries(BAD)) {
    const file = `${dir}/${name}.yaml`;
    await Deno.writeTextFile(file, yaml);
    const r = await cli(etcd, ["dispatch", file]);
    assert.equal(r.code, 1, `${name}: exit ${r.code}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n").filter((l) =>
      !l.startsWith("Warning")
    );
    assert.equal(lines.length, 1, `${name}: one line expected: ${r.stderr}`);
    assert.ok(lines[0].includes(file), `${name}: names the file: ${lines[0]}`);
    assert.match(lines[0], re, name);
    assert.equal(r.stdout, "", `${name}: nothing on stdout`);
  }
  const all = await etcd.client().getAll().prefix("/boi/").keys();
  assert.deepEqual(all, [], "nothing stored under /boi/");
  assert.equal(await etcd.revision(), revBefore, "no write happened at all");
});
