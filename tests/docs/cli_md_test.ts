/**
 * docs/cli.md is generated (scripts/gen_cli_docs.ts, `deno task docs`): it
 * must equal a fresh generation, and each generated block must be what the
 * real CLI process prints for `--help`, so neither the doc nor the generator
 * can drift from the CLI.
 */
import assert from "node:assert/strict";
import {
  CLI_MD,
  commandPaths,
  helpText,
  renderCliDocs,
} from "../../scripts/gen_cli_docs.ts";
import { REPO_ROOT } from "../harness/mod.ts";

Deno.test("docs/cli.md equals a fresh generation (run `deno task docs`)", async () => {
  const current = await Deno.readTextFile(CLI_MD);
  const fresh = await renderCliDocs();
  if (current !== fresh) {
    const a = current.split("\n");
    const b = fresh.split("\n");
    const i = a.findIndex((line, n) => line !== b[n]);
    assert.fail(
      `docs/cli.md is stale: run \`deno task docs\`; first difference at line ${
        i + 1
      }:\n  checked in: ${JSON.stringify(a[i])}\n  generated:  ${
        JSON.stringify(b[i])
      }`,
    );
  }
});

Deno.test("every command's --help, printed by the real CLI, is its block in docs/cli.md", async () => {
  const doc = await Deno.readTextFile(CLI_MD);
  const paths = commandPaths();
  assert.ok(paths.length >= 20, `only ${paths.length} commands found`);
  const check = async (path: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-q", "-P=cli", "cli.ts", ...path, "--help"],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const name = ["boi", ...path].join(" ");
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(
      out.code,
      0,
      `${name} --help exited ${out.code}: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
    assert.equal(stdout, await helpText(path), `${name} --help`);
    const block = `## ${name}\n\n\`\`\`text\n${
      stdout.replace(/\n$/, "")
    }\n\`\`\`\n`;
    assert.ok(doc.includes(block), `docs/cli.md has no block for ${name}`);
  };
  // A few at a time: the machine is shared, and each is a Deno start-up.
  for (let i = 0; i < paths.length; i += 4) {
    await Promise.all(paths.slice(i, i + 4).map(check));
  }
});
