/**
 * A bad `BOI_PLUGINS` file stops the node at start with exit 2 and one line
 * naming the file, the field and the value (issue 11 item 7): node/main.ts
 * run as a real process. None of these gets as far as etcd.
 */
import assert from "node:assert/strict";
import { makeTempDir, run } from "../harness/mod.ts";
import { pluginArgv } from "./plugin_util.ts";

/** Starts node/main.ts with `plugins` as its BOI_PLUGINS file; returns the exit and stderr. */
async function startWith(
  plugins: string,
  dataDir?: string,
): Promise<{ code: number; stderr: string; file: string }> {
  const dir = await makeTempDir("boi-pcfg-");
  const file = `${dir}/plugins.yaml`;
  await Deno.writeTextFile(file, plugins);
  const r = await run(
    Deno.execPath(),
    ["run", "-q", "-P=node-test", "node/main.ts"],
    {
      env: {
        BOI_NODE_ID: "bad-plugins",
        BOI_PLUGINS: file,
        BOI_DATA_DIR: dataDir ?? `${dir}/data`,
        // Never dialled: the node must give up before it reaches etcd.
        BOI_ETCD_ENDPOINTS: "http://127.0.0.1:1",
        BOI_HTTP_ADDR: "127.0.0.1:0",
      },
      timeoutMs: 30_000,
    },
  );
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  return { code: r.code, stderr: r.stderr, file };
}

const cases: {
  name: string;
  yaml: (deno: string) => string;
  line: RegExp;
  dataDir?: string;
}[] = [
  {
    name: "pool: null",
    yaml: () => "pool: null\n",
    line:
      /^boi node: FILE: pool: the node needs a pool plugin \(leave the entry out for the reference one\): got null$/,
  },
  {
    name: "a malformed field",
    yaml: () => "pool:\n  argv: [x]\n  ready_timeout_s: ten\n",
    line: /^boi node: FILE: pool\.ready_timeout_s: .+: got "ten"$/,
  },
  {
    name: "both argv and socket",
    yaml: (deno) => `hooks:\n  argv: [${deno}]\n  socket: /tmp/x.sock\n`,
    line:
      /^boi node: FILE: hooks: needs exactly one of argv .+ or socket .+: got \{.+\}$/,
  },
  {
    name: "an executable path that does not exist",
    yaml: () => "hooks:\n  argv: [/nonexistent/boi-plugin, --flag]\n",
    line:
      /^boi node: FILE: hooks\.argv\[0\]: no such executable: "\/nonexistent\/boi-plugin"$/,
  },
  {
    name: "a data dir too long for the plugin sockets",
    yaml: () => "",
    dataDir: `/tmp/${"d".repeat(100)}`,
    line:
      /^boi node: FILE: workspace: its socket "\/tmp\/d+\/plugins\/workspace\.sock" is longer than 107 bytes: use a shorter BOI_DATA_DIR or plugin name$/,
  },
  {
    name: "a command not on PATH",
    yaml: () => "router:\n  argv: [boi-no-such-plugin-cmd]\n",
    line:
      /^boi node: FILE: router\.argv\[0\]: no executable "boi-no-such-plugin-cmd" on PATH/,
  },
];

for (const c of cases) {
  Deno.test(`BOI_PLUGINS with ${c.name}: the node exits 2 with one line naming file, field and value`, async () => {
    const r = await startWith(c.yaml(Deno.execPath()), c.dataDir);
    const lines = r.stderr.trim().split("\n");
    assert.equal(r.code, 2, r.stderr);
    assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
    const want = new RegExp(c.line.source.replace("FILE", escape(r.file)));
    assert.match(lines[0], want);
  });
}

Deno.test("BOI_PLUGINS with a good extra plugin passes the command check (the check can say yes)", async () => {
  // The node would start: stop it at the next hurdle, an unreachable etcd
  // is not it (it retries), so a taken HTTP port ends it instead.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const dir = await makeTempDir("boi-pcfg-");
    const file = `${dir}/plugins.yaml`;
    await Deno.writeTextFile(
      file,
      `router:\n  argv: ${
        JSON.stringify(pluginArgv("router_passthrough.ts"))
      }\n`,
    );
    const r = await run(Deno.execPath(), [
      "run",
      "-q",
      "-P=node-test",
      "node/main.ts",
    ], {
      env: {
        BOI_NODE_ID: "good-plugins",
        BOI_PLUGINS: file,
        BOI_DATA_DIR: `${dir}/data`,
        BOI_ETCD_ENDPOINTS: "http://127.0.0.1:1",
        BOI_HTTP_ADDR: `127.0.0.1:${(l.addr as Deno.NetAddr).port}`,
      },
      timeoutMs: 30_000,
    });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    assert.doesNotMatch(r.stderr, /argv\[0\]/, r.stderr);
    assert.notEqual(r.code, 0);
  } finally {
    l.close();
  }
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
