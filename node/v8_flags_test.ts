import assert from "node:assert/strict";
import { NODE_V8_FLAGS, nodeV8FlagsArg } from "./v8_flags.ts";

/** The young generation's size after a burst of short-lived garbage, in a child `deno run`. */
async function newSpaceAfterBurst(flags: string[]): Promise<number> {
  const code = `
    import v8 from "node:v8";
    let keep = [];
    for (let i = 0; i < 2e6; i++) {
      keep.push({ i, s: [i] });
      if (keep.length > 20000) keep = [];
    }
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    console.log(ns.space_size);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", ...flags, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = out.stdin.getWriter();
  await w.write(new TextEncoder().encode(code));
  await w.close();
  const res = await out.output();
  const err = new TextDecoder().decode(res.stderr);
  assert.equal(res.code, 0, err);
  // V8 warns and goes on when it does not know a flag: that must fail here.
  assert.doesNotMatch(err, /unrecognized|unknown|Error/i, err);
  return Number(new TextDecoder().decode(res.stdout).trim());
}

Deno.test("node V8 flags: one deno run argument", () => {
  assert.equal(nodeV8FlagsArg(), `--v8-flags=${NODE_V8_FLAGS.join(",")}`);
});

Deno.test("node V8 flags: this Deno's V8 takes them and keeps the young generation small", async () => {
  const MiB = 1024 * 1024;
  const semi = Number(
    NODE_V8_FLAGS.find((f) => f.startsWith("--max-semi-space-size="))
      ?.split("=")[1],
  );
  assert.ok(semi > 0, `no --max-semi-space-size in ${NODE_V8_FLAGS}`);
  const flagged = await newSpaceAfterBurst([nodeV8FlagsArg()]);
  const plain = await newSpaceAfterBurst([]);
  // The new space is two semi-spaces at most.
  assert.ok(flagged <= 2 * semi * MiB, `flagged new space ${flagged}`);
  assert.ok(plain > flagged, `V8's default ${plain} vs flagged ${flagged}`);
});
