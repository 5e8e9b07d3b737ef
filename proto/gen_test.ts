/**
 * CI's check that the checked-in generated code (proto/gen/) is what
 * scripts/gen_proto.sh makes from proto/boi/**.proto today: regenerates into
 * a temporary directory and compares every file. Without protoc it is skipped
 * out loud (scripts/setup.sh installs it, so CI never skips).
 */
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname;
const gen = `${root}proto/gen`;

async function hasProtoc(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("protoc", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

async function files(dir: string, under = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/${under}`)) {
    const rel = under ? `${under}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await files(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

if (await hasProtoc()) {
  Deno.test("proto/gen is current: scripts/gen_proto.sh makes the same files from proto/boi", async () => {
    const tmp = await Deno.makeTempDir({ prefix: "boi-gen-proto-" });
    try {
      const r = await new Deno.Command("bash", {
        args: [`${root}scripts/gen_proto.sh`, tmp],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(r.stderr);
      assert.ok(r.success, `scripts/gen_proto.sh failed:\n${err}`);
      const want = await files(tmp), have = await files(gen);
      assert.deepEqual(
        have,
        want,
        "proto/gen/ holds other files than the .proto files make: run bash scripts/gen_proto.sh",
      );
      for (const f of want) {
        const a = await Deno.readTextFile(`${gen}/${f}`);
        const b = await Deno.readTextFile(`${tmp}/${f}`);
        if (a === b) continue;
        const al = a.split("\n"), bl = b.split("\n");
        const i = al.findIndex((l, n) => l !== bl[n]);
        assert.fail(
          `proto/gen/${f} is stale (line ${i + 1}: checked in ${
            JSON.stringify(al[i])
          }, generated ${
            JSON.stringify(bl[i])
          }): run bash scripts/gen_proto.sh and commit proto/gen/`,
        );
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
} else {
  const why =
    "protoc is not installed (bash scripts/setup.sh installs Debian's protobuf-compiler)";
  console.error(`SKIPPED proto/gen currency check: ${why}`);
  Deno.test({
    name: `proto/gen is current — SKIPPED: ${why}`,
    ignore: true,
    fn: () => {},
  });
}
