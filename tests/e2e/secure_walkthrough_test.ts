/**
 * docs/operations.md's secure 3-node bootstrap, run exactly as written: the
 * bash blocks between its walkthrough markers, in one shell, with WORK and
 * the ports set to a temp dir and free loopback ports.
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

const skip = missingTool(["etcd", "curl"]);
if (skip) console.warn(`SKIPPED secure walk-through: no ${skip} on PATH`);

Deno.test({
  name: "docs/operations.md: the secure 3-node walk-through runs as written",
  ignore: skip !== undefined,
  fn: async () => {
    const script = await docScript("docs/operations.md", "walkthrough");
    assert.ok(script.includes("cluster init --secure"));
    const work = await makeTempDir("boi-walk-");
    const [etcd, peer, a, b, c, join] = freePorts(6);
    const { code, stdout, stderr } = await runScript(script, {
      cwd: REPO_ROOT,
      env: {
        WORK: work,
        ETCD_PORT: String(etcd),
        PEER_PORT: String(peer),
        A_PORT: String(a),
        B_PORT: String(b),
        C_PORT: String(c),
        JOIN_PORT: String(join),
      },
    });
    const logs = async (f: string) => await fileTail(`${work}/${f}`, f) ?? "";
    const context = `stdout:\n${stdout}\nstderr:\n${stderr}\n${await logs(
      "node-a.log",
    )}\n${await logs("node-b.log")}\n${await logs("node-c.log")}`;
    assert.equal(code, 0, context);
    assert.match(stdout, /^[0-9a-f]{64}$/m, context); // the CA fingerprint
    for (const n of ["node-a", "node-b", "node-c"]) {
      assert.match(stdout, new RegExp(n), context);
    }
    assert.match(stdout, /hello from node-[bc]/, context);
    assert.match(stderr, /--client-cert-auth/, context);
    await Deno.remove(work, { recursive: true }).catch(() => {});
  },
});
