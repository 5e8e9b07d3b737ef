/**
 * Bad configuration, as an operator meets it: `node/main.ts` run as a process
 * must exit 2 with one stderr line `boi node: VAR …: got "…"`, never a stack
 * trace and never a node that starts with a wrong value.
 */
import assert from "node:assert/strict";
import { childEnv, makeTempDir, REPO_ROOT } from "../harness/paths.ts";

async function runNode(
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  const dir = await makeTempDir("boi-cfg-");
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-q", "-P=node-test", "node/main.ts"],
      cwd: REPO_ROOT,
      env: childEnv({
        // Nothing listens there: a config error must come before any dial.
        BOI_ETCD_ENDPOINTS: "127.0.0.1:1",
        BOI_DATA_DIR: dir,
        BOI_NODE_ID: "cfg-test",
        BOI_HTTP_ADDR: "127.0.0.1:0",
        ...env,
      }),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // A node that accepted the config would run until killed.
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const out = await child.output();
    clearTimeout(timer);
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function assertRefused(env: Record<string, string>, line: RegExp) {
  const { code, stderr } = await runNode(env);
  const lines = stderr.trim().split("\n");
  assert.equal(
    code,
    2,
    `${JSON.stringify(env).slice(0, 80)}: exit ${code}, stderr:\n${stderr}`,
  );
  assert.equal(lines.length, 1, `one line expected, got:\n${stderr}`);
  assert.match(lines[0], line);
}

Deno.test("config exit: BOI_KEY_PREFIX without slashes", async () => {
  await assertRefused(
    { BOI_KEY_PREFIX: "noslash" },
    /^boi node: BOI_KEY_PREFIX must start and end with "\/": got "noslash"$/,
  );
});

Deno.test("config exit: BOI_REGION over the 256-byte capability limit", async () => {
  await assertRefused(
    { BOI_REGION: "r".repeat(300) },
    /^boi node: BOI_REGION must be at most 256 bytes of UTF-8: got "r+…" \(300 bytes\)$/,
  );
});

Deno.test("config exit: BOI_WORKERS_MAX of 0 or 1e9", async () => {
  await assertRefused(
    { BOI_WORKERS_MAX: "0" },
    /^boi node: BOI_WORKERS_MAX .*1.*: got "0"$/,
  );
  await assertRefused(
    { BOI_WORKERS_MAX: "1e9" },
    /^boi node: BOI_WORKERS_MAX must be at most 1024: got "1e9"$/,
  );
});

Deno.test("config exit: empty BOI_NODE_ID", async () => {
  await assertRefused(
    { BOI_NODE_ID: "" },
    /^boi node: BOI_NODE_ID must not be empty .*: got ""$/,
  );
});

Deno.test("config exit: BOI_HTTP_ADDR already in use", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const addr = `127.0.0.1:${(taken.addr as Deno.NetAddr).port}`;
  await assertRefused(
    { BOI_HTTP_ADDR: addr },
    new RegExp(
      `^boi node: BOI_HTTP_ADDR is an address already in use: got "${addr}"$`,
    ),
  );
});

Deno.test("config exit: a BOI_DATA_DIR where the task logs cannot go", async () => {
  const dir = await makeTempDir("boi-cfg-logs-");
  try {
    await Deno.writeTextFile(`${dir}/logs`, "a file, not a directory");
    await assertRefused(
      { BOI_DATA_DIR: dir },
      /^boi node: BOI_DATA_DIR: cannot make ".*\/logs" for task logs: File exists/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
