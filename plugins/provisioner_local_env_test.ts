/** The reference provisioner's settings (SPEC §7, §10) under bad input: one line naming the variable and the value, exit 2 — no stack trace. */
import assert from "node:assert/strict";
import { REPO, tempDir } from "./test_util.ts";

Deno.test("provisioner_local: a malformed BOI_PROVISION_NODE_ARGV is one line and exit 2", async () => {
  const dir = await tempDir("boi-prov-env-");
  try {
    const socket = `${dir}/p.sock`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-q",
        "-P=plugin",
        `--allow-net=unix:${socket}`,
        "--allow-env",
        `${REPO}/plugins/provisioner_local.ts`,
      ],
      cwd: REPO,
      env: {
        BOI_PLUGIN_SOCKET: socket,
        BOI_PLUGIN_KIND: "provisioner",
        BOI_PROVISION_NODE_ARGV: "[deno",
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 2, err);
    assert.equal(
      err,
      'provisioner_local: BOI_PROVISION_NODE_ARGV must be a JSON array of strings: got "[deno"',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
