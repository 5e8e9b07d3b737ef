import assert from "node:assert/strict";
import { markedScript, runScript } from "./doc_blocks.ts";

Deno.test("markedScript joins the bash blocks between the markers only", () => {
  const md = "```bash\nno\n```\n<!-- x:begin -->\n```bash\na\n```\ntext\n" +
    "```sh\nnot bash\n```\n```bash\nb\n```\n<!-- x:end -->\n```bash\nno\n```";
  assert.equal(markedScript(md, "x"), "a\n\nb\n");
  assert.throws(() => markedScript(md, "y"), /y markers missing/);
});

Deno.test("runScript reports a failed step at once, though a background child holds its pipes", async () => {
  const t0 = performance.now();
  const r = await runScript("echo before\nsleep 60 &\nfalse\necho after", {
    cwd: Deno.cwd(),
    env: {},
    timeoutMs: 30_000,
  });
  const ms = performance.now() - t0;
  assert.equal(r.code, 1, JSON.stringify(r));
  assert.equal(r.stdout, "before\n");
  assert.ok(
    ms < 10_000,
    `took ${ms.toFixed(0)} ms: waited for the pipes, not bash`,
  );
});
