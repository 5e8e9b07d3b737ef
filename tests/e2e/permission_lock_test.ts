/**
 * Issue 15, test 1: a small cluster under exactly the shipped permissions.
 * Two nodes run as `deno task node` does (`-P=node-launcher node/launch.ts`,
 * which starts node/main.ts under the computed lock); the test checks that
 * the running node's command line is the one `deno task node:flags` prints,
 * then proves each refusal:
 * - the real node: a tail request forwarded to a node that is not in its
 *   BOI_PEERS is refused by Deno (502 naming the lock), while the declared
 *   peer is reached;
 * - a probe run under the node's exact flags (node/main.ts swapped for
 *   tests/e2e/lock_probe.ts): no read or write outside the allowance, no
 *   connection to an address that is not etcd or a peer, no `sh`; the data
 *   dir, etcd and the peer work;
 * - the same probe under each reference plugin's shipped argv: no etcd, no
 *   reads outside its own dir;
 * and normal work passes: a spec dispatched through the CLI ends DONE; a
 * launcher killed by SIGKILL leaves no node behind (the stdin lifeline).
 */
import assert from "node:assert/strict";
import { referencePluginArgv } from "../../node/plugins/config.ts";
import {
  cli,
  type EtcdServer,
  freePorts,
  listEnvelopes,
  makeTempDir,
  type NodeProc,
  notYet,
  readNode,
  REPO_ROOT,
  startEtcd,
  startNode,
  StopWaiting,
  waitFor,
} from "../harness/mod.ts";
import { childEnv } from "../harness/paths.ts";

const PROBE = `${REPO_ROOT}/tests/e2e/lock_probe.ts`;

interface Probed {
  op: string;
  target: string;
  ok: boolean;
  error: string | null;
}

/** The env a locked node of this test gets (the same the harness passes). */
function nodeEnv(
  etcd: EtcdServer,
  id: string,
  port: number,
  dataDir: string,
  peers: string,
): Record<string, string> {
  return {
    BOI_NODE_ID: id,
    BOI_ETCD_ENDPOINTS: etcd.endpoint,
    BOI_HTTP_ADDR: `127.0.0.1:${port}`,
    BOI_DATA_DIR: dataDir,
    ...(peers ? { BOI_PEERS: peers } : {}),
  };
}

/** `deno task node:flags` for that env: the env assignments and the argv. */
async function printed(
  env: Record<string, string>,
): Promise<{ env: Record<string, string>; argv: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "-P=node-launcher", "node/launch.ts", "--print"],
    cwd: REPO_ROOT,
    env: childEnv(env),
    clearEnv: true,
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0, "node:flags failed");
  // The test's paths hold no spaces or quotes: a plain split is exact.
  const words = new TextDecoder().decode(out.stdout).trim().split(" ");
  const assigns: Record<string, string> = {};
  while (/^[A-Z_]+=/.test(words[0])) {
    const [k, ...v] = words.shift()!.split("=");
    assigns[k] = v.join("=");
  }
  return { env: assigns, argv: words };
}

/** Runs the probe with `argv` (its last word, the entry, swapped for the probe). */
async function probe(
  argv: string[],
  env: Record<string, string>,
  tries: string[],
): Promise<Map<string, Probed>> {
  const out = await new Deno.Command(argv[0], {
    args: [...argv.slice(1, -1), PROBE, ...tries],
    cwd: REPO_ROOT,
    env: childEnv(env),
    clearEnv: true,
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `probe failed: ${err}`);
  const seen = new Map<string, Probed>();
  for (const line of text.trim().split("\n")) {
    const p = JSON.parse(line) as Probed;
    seen.set(`${p.op}:${p.target}`, p);
  }
  assert.equal(seen.size, tries.length, text);
  return seen;
}

function allowed(seen: Map<string, Probed>, key: string): void {
  const p = seen.get(key)!;
  assert.ok(p.ok, `${key} should be allowed: ${p.error}`);
}

function refused(seen: Map<string, Probed>, key: string): void {
  const p = seen.get(key)!;
  assert.ok(!p.ok, `${key} should be refused by the lock, but it worked`);
  assert.match(p.error!, /^NotCapable: Requires/, `${key}: ${p.error}`);
}

/** Waits for the node's registration and returns the registered pid: the launcher's child. */
async function lockedPid(etcd: EtcdServer, n: NodeProc): Promise<number> {
  const rec = await waitFor(`node ${n.nodeId} registered`, async () => {
    if (!n.running) throw new StopWaiting(`launcher exited:\n${n.logTail(15)}`);
    return (await readNode(etcd, n.nodeId)) ?? notYet("no record");
  }, { timeoutMs: 30_000 });
  const pid = rec.value.pid;
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
  assert.equal(ppid, n.pid, "the registered node is the launcher's child");
  return pid;
}

Deno.test("permission lock: the shipped tasks and sets (no -A outside tests and the bench)", async () => {
  const cfg = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  // What this file runs as "deno task node" is the task as shipped.
  assert.equal(cfg.tasks.node, "deno run -P=node-launcher node/launch.ts");
  assert.equal(cfg.tasks.cli, "deno run -P=cli cli.ts");
  const all = Object.entries(
    cfg.permissions as Record<string, { all?: boolean }>,
  )
    .filter(([, set]) => set.all === true).map(([name]) => name).sort();
  assert.deepEqual(all, ["bench", "test"]);
  const node = cfg.permissions.node;
  for (const k of ["read", "write", "net", "run"]) {
    assert.equal(node[k], undefined, `-P=node must leave ${k} to the lock`);
  }
  const launcher = cfg.permissions["node-launcher"];
  assert.equal(launcher.net, undefined);
  assert.equal(launcher.write, undefined);
  for (
    const [name, task] of Object.entries(cfg.tasks as Record<string, string>)
  ) {
    assert.ok(!/(^|\s)(-A|--allow-all)(\s|$)/.test(task), `${name}: ${task}`);
  }
});

Deno.test("permission lock: a cluster under the shipped permissions works and is refused the rest", async () => {
  await using etcd = await startEtcd();
  const etcdHostPort = new URL(etcd.endpoint.split(",")[0]).host;
  const [p1, p2] = freePorts(2);
  const outside = await makeTempDir("boi-outside-");
  await Deno.writeTextFile(`${outside}/secret.txt`, "not for the node\n");
  // A listener that is neither etcd nor a peer: connecting to it must fail.
  const stranger = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const strangerAddr = `127.0.0.1:${stranger.addr.port}`;
  const locked = {
    entry: "node/launch.ts",
    permissionSet: "node-launcher",
    waitRegistered: false,
    logLevel: "info",
  };
  const d1 = await makeTempDir("boi-lock-n1-");
  const d2 = await makeTempDir("boi-lock-n2-");
  // Declared before the nodes, so it runs after they are stopped.
  await using _dirs = {
    async [Symbol.asyncDispose]() {
      for (const d of [outside, d1, d2]) {
        await Deno.remove(d, { recursive: true }).catch(() => {});
      }
    },
  };
  // n1 may forward to n2; n2 declares no peers (forwarding off under the lock).
  const env1 = nodeEnv(etcd, "n1", p1, d1, `127.0.0.1:${p2}`);
  const env2 = nodeEnv(etcd, "n2", p2, d2, "");
  await using n1 = await startNode(etcd, {
    ...locked,
    nodeId: "n1",
    httpPort: p1,
    dataDir: d1,
    caps: { "x-test-lock": "a" },
    // A loader variable in the operator's shell (CUDA and conda hosts set
    // one): Deno refuses it to a locked process's children, so the launcher
    // drops it; before, the launcher died with an uncaught NotCapable.
    env: {
      BOI_PEERS: env1.BOI_PEERS,
      LD_LIBRARY_PATH: "/nonexistent/boi-test-lib",
    },
  });
  await using n2 = await startNode(etcd, {
    ...locked,
    nodeId: "n2",
    httpPort: p2,
    dataDir: d2,
    caps: { "x-test-lock": "b" },
  });
  const nodePids = new Map<NodeProc, number>();
  try {
    // The running nodes are under exactly what `deno task node:flags` prints.
    const flags1 = await printed(env1);
    const flags2 = await printed(env2);

    for (const [n, flags] of [[n1, flags1], [n2, flags2]] as const) {
      const pid = await lockedPid(etcd, n);
      nodePids.set(n, pid);
      const cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`))
        .split("\0").filter((s) => s !== "");
      // argv[0] is `deno` from PATH; the rest is word for word.
      assert.deepEqual(cmdline.slice(1), flags.argv.slice(1));
      assert.ok(!cmdline.includes("-A") && !cmdline.includes("--allow-all"));
      assert.ok(cmdline.includes("-P=node"), cmdline.join(" "));
      const environ = (await Deno.readTextFile(`/proc/${pid}/environ`))
        .split("\0");
      assert.ok(
        !environ.some((kv) => kv.startsWith("LD_")),
        `the locked node got a loader variable: ${
          environ.filter((kv) => kv.startsWith("LD_"))
        }`,
      );
    }
    assert.match(
      n1.logTail(200),
      /not passing LD_LIBRARY_PATH to the node/,
      "the launcher says what it dropped",
    );

    // Normal work passes: a spec dispatched through the CLI ends DONE.
    const specFile = `${outside}/spec.yaml`;
    await Deno.writeTextFile(
      specFile,
      `name: locked
tasks:
  - { id: on-a, run: "echo ran-on-a", requires: { x-test-lock: a } }
  - { id: on-b, run: "echo ran-on-b", requires: { x-test-lock: b } }
  - { id: after, run: "echo both-done", depends_on: [on-a, on-b] }
`,
    );
    const r = await cli(etcd, ["dispatch", specFile, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const { spec_id } = JSON.parse(r.stdout);
    const done = await waitFor(`every task of ${spec_id} DONE`, async () => {
      const all = (await listEnvelopes(etcd, { specId: spec_id })).map((s) =>
        s.value
      );
      const open = all.filter((e) => e.state !== "DONE");
      return all.length === 3 && open.length === 0 ? all : notYet(
        all.map((e) => `${e.task_id}:${e.state}:${e.last_error}`),
      );
    }, { timeoutMs: 30_000 });
    const onA = done.find((e) => e.task_id.endsWith(".on-a"))!;
    const onB = done.find((e) => e.task_id.endsWith(".on-b"))!;
    assert.equal(onA.ran_on, "n1");
    assert.equal(onB.ran_on, "n2");

    // The real node: n2 has no peers, so its forward to n1 is refused by Deno.
    const refusedTail = await fetch(
      `${n2.url}/internal/tail/${onA.task_id}?max_bytes=4096`,
    );
    const refusedText = await refusedTail.text();
    assert.equal(refusedTail.status, 502, refusedText);
    assert.match(refusedText, /not in this node's permission lock/);
    assert.match(refusedText, /Requires net access/);
    // n1 lists n2 as a peer: its forward reaches n2 and streams the log.
    const okTail = await fetch(
      `${n1.url}/internal/tail/${onB.task_id}?max_bytes=4096`,
    );
    const okText = await okTail.text();
    assert.equal(okTail.status, 200, okText);
    assert.equal(okTail.headers.get("x-boi-via"), "n1");
    assert.match(okText, /ran-on-b/);

    // A probe under n1's exact flags: the allowance and nothing else.
    const inside = `${d1}/probe.txt`;
    const seen = await probe(flags1.argv, { ...env1, ...flags1.env }, [
      `write:${inside}`,
      `read:${inside}`,
      `connect:${etcdHostPort}`,
      `connect:127.0.0.1:${p2}`,
      `read:${outside}/secret.txt`,
      `read:/etc/hostname`,
      `write:${outside}/planted.txt`,
      `connect:${strangerAddr}`,
      `run:sh`,
    ]);
    allowed(seen, `write:${inside}`);
    allowed(seen, `read:${inside}`);
    allowed(seen, `connect:${etcdHostPort}`);
    allowed(seen, `connect:127.0.0.1:${p2}`);
    refused(seen, `read:${outside}/secret.txt`);
    refused(seen, `read:/etc/hostname`);
    refused(seen, `write:${outside}/planted.txt`);
    refused(seen, `connect:${strangerAddr}`);
    refused(seen, `run:sh`);

    // Each reference plugin's shipped argv: no etcd, nothing outside its dir.
    for (
      const set of [
        "plugin-workspace",
        "plugin-pool",
        "plugin-router",
        "plugin-hooks",
      ]
    ) {
      const own = `${outside}/${set}`;
      await Deno.mkdir(own);
      const argv = referencePluginArgv("x.ts", set).map((a) =>
        a.replaceAll("{socket}", `${outside}/${set}.sock`)
          .replaceAll("{data_dir}", own)
      );
      const p = await probe(argv, {}, [
        `write:${own}/f`,
        `connect:${etcdHostPort}`,
        `read:${outside}/secret.txt`,
        `read:${d1}/probe.txt`,
      ]);
      allowed(p, `write:${own}/f`);
      refused(p, `connect:${etcdHostPort}`);
      refused(p, `read:${outside}/secret.txt`);
      refused(p, `read:${d1}/probe.txt`);
    }

    // No orphans: the launcher killed outright (it cannot pass SIGKILL on),
    // the node sees its stdin lifeline close and stops.
    const pid2 = nodePids.get(n2)!;
    Deno.kill(n2.pid, "SIGKILL");
    await waitFor(`node n2 (pid ${pid2}) gone after its launcher`, async () => {
      try {
        const stat = await Deno.readTextFile(`/proc/${pid2}/stat`);
        // A zombie has exited; it waits only for its reaper.
        return stat.split(") ")[1]?.startsWith("Z") ? true : notYet("running");
      } catch {
        return true;
      }
    }, { timeoutMs: 15_000 });
  } finally {
    stranger.close();
    // If the lifeline failed, n2's node outlived its launcher: stop it here.
    const pid2 = nodePids.get(n2);
    if (pid2 !== undefined) {
      try {
        // Only that node (its data dir on the command line), not a reused pid.
        const cmd = await Deno.readTextFile(`/proc/${pid2}/cmdline`);
        if (cmd.includes(d2)) Deno.kill(pid2, "SIGTERM");
      } catch {
        // gone, as it should be
      }
    }
  }
});
