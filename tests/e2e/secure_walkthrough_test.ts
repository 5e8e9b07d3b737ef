/**
 * docs/operations.md's secure 3-node bootstrap, run exactly as written: the
 * bash blocks between its walkthrough markers, in one shell, with WORK and
 * the ports set to a temp dir and free loopback ports.
 */
import assert from "node:assert/strict";
import { freePorts, makeTempDir, REPO_ROOT } from "../harness/mod.ts";

/** The walk-through's commands, in order. */
export function walkthroughScript(markdown: string): string {
  const begin = markdown.indexOf("<!-- walkthrough:begin -->");
  const end = markdown.indexOf("<!-- walkthrough:end -->");
  if (begin < 0 || end < begin) throw new Error("walkthrough markers missing");
  const blocks = [
    ...markdown.slice(begin, end).matchAll(/```bash\n([\s\S]*?)```/g),
  ];
  return blocks.map((m) => m[1]).join("\n");
}

const skip = ["etcd", "curl"].find((bin) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${bin}`] }).outputSync()
    .code !== 0
);
if (skip) console.warn(`SKIPPED secure walk-through: no ${skip} on PATH`);

Deno.test({
  name: "docs/operations.md: the secure 3-node walk-through runs as written",
  ignore: skip !== undefined,
  fn: async () => {
    const doc = await Deno.readTextFile(`${REPO_ROOT}/docs/operations.md`);
    const script = walkthroughScript(doc);
    assert.ok(script.includes("cluster init --secure"));
    const work = await makeTempDir("boi-walk-");
    const [etcd, peer, a, b, c, join] = freePorts(6);
    const child = new Deno.Command("bash", {
      args: ["-c", `set -euo pipefail\n${script}`],
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
      stdout: "piped",
      stderr: "piped",
      detached: true, // its own group: a failure is cleaned up with one kill
    }).spawn();
    const timer = setTimeout(() => {
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch { /* gone */ }
    }, 240_000);
    const out = await child.output();
    clearTimeout(timer);
    try {
      Deno.kill(-child.pid, "SIGKILL"); // anything the script left behind
    } catch { /* nothing left */ }
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const logs = async (f: string) =>
      await Deno.readTextFile(`${work}/${f}`).then(
        (t) => `--- ${f}\n${t.split("\n").slice(-15).join("\n")}`,
        () => "",
      );
    const context = `stdout:\n${stdout}\nstderr:\n${stderr}\n${await logs(
      "node-a.log",
    )}\n${await logs("node-b.log")}\n${await logs("node-c.log")}`;
    assert.equal(out.code, 0, context);
    assert.match(stdout, /^[0-9a-f]{64}$/m, context); // the CA fingerprint
    for (const n of ["node-a", "node-b", "node-c"]) {
      assert.match(stdout, new RegExp(n), context);
    }
    assert.match(stdout, /hello from node-[bc]/, context);
    assert.match(stderr, /--client-cert-auth/, context);
    await Deno.remove(work, { recursive: true }).catch(() => {});
  },
});
