/**
 * docs/operations.md's quick start, run exactly as written: the bash blocks
 * between its quickstart markers, in one shell, in a fresh temp dir, with the
 * ports set to free loopback ports and BOI_SRC to this checkout. Real etcd,
 * real nodes, the real CLI.
 */
import assert from "node:assert/strict";
import {
  docScript,
  fileTail,
  freePorts,
  makeTempDir,
  missingTool,
  REPO_ROOT,
  runScript,
} from "../harness/mod.ts";
import { childEnv } from "../harness/paths.ts";

const skip = missingTool(["etcd", "curl", "pgrep"]);
if (skip) console.warn(`SKIPPED quick start: no ${skip} on PATH`);

Deno.test({
  name: "docs/operations.md: every command of the quick start runs as written",
  ignore: skip !== undefined,
  fn: async () => {
    const script = await docScript("docs/operations.md", "quickstart");
    for (
      const step of ["dispatch hello.yaml --wait", "kill -9", "node drain"]
    ) {
      assert.ok(script.includes(step), `the quick start lost "${step}"`);
    }
    const work = await makeTempDir("boi-quick-");
    const [etcd, peer, a, b] = freePorts(4);
    const { code, stdout, stderr } = await runScript(script, {
      cwd: work,
      env: childEnv({
        BOI_SRC: REPO_ROOT,
        TMPDIR: work, // the script's own `mktemp -d` lands in here
        ETCD_PORT: String(etcd),
        PEER_PORT: String(peer),
        A_PORT: String(a),
        B_PORT: String(b),
        NO_COLOR: "1",
      }),
      clearEnv: true,
    });
    const logs = async () => {
      const parts: string[] = [];
      for await (const e of Deno.readDir(work)) {
        if (!e.isDirectory) continue;
        for (const f of ["etcd.log", "node-a.log", "node-b.log"]) {
          const tail = await fileTail(`${work}/${e.name}/${f}`, f);
          if (tail !== null) parts.push(tail);
        }
      }
      return parts.join("\n");
    };
    const context = `stdout:\n${stdout}\nstderr:\n${stderr}\n${await logs()}`;
    assert.equal(code, 0, context);
    for (const n of ["node-a", "node-b"]) {
      assert.match(stdout, new RegExp(`^${n} `, "m"), context); // `boi nodes`
    }
    assert.match(stdout, /^hello-quick: 3 DONE/m, context);
    assert.match(stdout, /^fast disk on node-b$/m, context);
    assert.match(stdout, /"status":\s*"ok"/, context); // /healthz
    assert.match(stdout, /^boi_tasks/m, context); // /metrics
    assert.match(stdout, /<title>[^<]*<\/title>/, context); // the dashboard
    const victim = stdout.match(/^killed (node-[ab])$/m)?.[1];
    assert.ok(victim, context);
    const survivor = victim === "node-a" ? "node-b" : "node-a";
    assert.match(stdout, /^state: DONE$/m, context);
    assert.match(stdout, /^attempts: 2$/m, context);
    assert.match(stdout, new RegExp(`^ran_on: ${survivor}$`, "m"), context);
    assert.match(stdout, new RegExp(`^woke up on ${survivor}$`, "m"), context);
    assert.match(stdout, new RegExp(`node ${survivor} drained`), context);
    await Deno.remove(work, { recursive: true }).catch(() => {});
  },
});
