/** The harness's own tests: real etcd processes, real child processes. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connectEtcd } from "../../node/etcd_client.ts";
import { deadline } from "../../node/etcd_errors.ts";
import type { Envelope } from "../../node/schema.ts";
import {
  cli,
  cliExists,
  listEnvelopes,
  listNodes,
  notYet,
  processAlive,
  processGroupAlive,
  processGroupMembers,
  readClaim,
  readEnvelope,
  readNode,
  REPO_ROOT,
  run,
  startEtcd,
  startEtcdCluster,
  startNode,
  startProxy,
  uniquePrefix,
  waitFor,
  WaitTimeoutError,
} from "./mod.ts";

const FAKE_NODE = "tests/harness/testdata/fake_node.ts";

Deno.test("etcd: stop and restart keep the data, ports and data dir", async () => {
  await using etcd = await startEtcd();
  const { endpoint, dataDir } = etcd;
  const pid = etcd.pid;
  await etcd.client().put("/h/k").value("v1");

  await etcd.stop();
  assert.equal(etcd.running, false);
  assert.equal(await processAlive(pid!), false);
  await assert.rejects(
    fetch(`${endpoint}/health`).then((r) => r.body?.cancel()),
    "nothing should answer on the client port while etcd is stopped",
  );

  await etcd.restart();
  assert.equal(etcd.endpoint, endpoint);
  assert.equal(etcd.dataDir, dataDir);
  assert.notEqual(etcd.pid, pid);
  assert.equal(await etcd.client().get("/h/k").string(), "v1");
});

Deno.test("etcd: a crash (SIGKILL) and restart keep the data; compact drops history", async () => {
  await using etcd = await startEtcd();
  const first = await etcd.client().put("/h/c").value("1").exec();
  await etcd.client().put("/h/c").value("2");

  await etcd.kill();
  assert.equal(etcd.running, false);
  await etcd.restart();
  assert.equal(await etcd.client().get("/h/c").string(), "2");

  const oldRev = Number(first.header.revision);
  assert.equal(
    await etcd.client().get("/h/c").revision(oldRev).string(),
    "1",
    "history is readable before compaction",
  );
  const compacted = await etcd.compact();
  assert.ok(compacted > oldRev);
  await assert.rejects(
    etcd.client().get("/h/c").revision(oldRev).string(),
    /compacted/i,
  );
});

Deno.test("etcd: dispose removes the temp data dir and keeps the log", async () => {
  let dataDir = "";
  let logFile = "";
  {
    await using etcd = await startEtcd();
    dataDir = etcd.dataDir;
    logFile = etcd.logFile;
    assert.ok(existsSync(dataDir));
  }
  assert.equal(existsSync(dataDir), false);
  assert.match(await Deno.readTextFile(logFile), /etcd/);
});

Deno.test("etcd cluster: three members, one lost, still serves", async () => {
  await using cluster = await startEtcdCluster({ members: 3 });
  assert.equal(cluster.endpoint.split(",").length, 3);
  await cluster.client().put("/h/q").value("quorum");
  await cluster.members[0].kill();
  assert.equal(await cluster.client().get("/h/q").string(), "quorum");
  await cluster.client().put("/h/q").value("still");
  await cluster.members[0].restart();
  assert.equal(await cluster.client().get("/h/q").string(), "still");
});

Deno.test("waitFor: resolves with the first truthy value", async () => {
  let n = 0;
  const v = await waitFor("n to reach 3", () => ++n >= 3 && { n }, {
    timeoutMs: 5000,
    intervalMs: 1,
  });
  assert.deepEqual(v, { n: 3 });
});

Deno.test("waitFor: the timeout names what was awaited and the last value seen", async () => {
  let n = 0;
  const err = await waitFor(
    "the answer",
    () => notYet({ count: ++n, state: "PENDING" }),
    { timeoutMs: 200, intervalMs: 20 },
  ).then(() => null, (e) => e);
  assert.ok(err instanceof WaitTimeoutError, String(err));
  assert.match(err.message, /waiting for the answer/);
  assert.match(err.message, /state: "PENDING"/);
  assert.deepEqual(err.lastSeen, notYet({ count: n, state: "PENDING" }));

  const plain = await waitFor("x", () => false, { timeoutMs: 50 })
    .then(() => null, (e) => e);
  assert.match(String(plain), /waiting for x .*last seen: false/);
});

Deno.test("waitFor: a throwing check is retried and reported", async () => {
  let n = 0;
  assert.equal(
    await waitFor("flaky", () => {
      if (++n < 3) throw new Error(`boom ${n}`);
      return "ok";
    }, { timeoutMs: 2000, intervalMs: 1 }),
    "ok",
  );
  await assert.rejects(
    waitFor("never", () => {
      throw new Error("etcd down");
    }, { timeoutMs: 100 }),
    /waiting for never.*error: Error: etcd down/,
  );
});

Deno.test("waitFor: a hanging check does not delay the timeout", async () => {
  let release!: () => void;
  const hang = new Promise<false>((r) => release = () => r(false));
  const t0 = Date.now();
  await assert.rejects(
    waitFor("hang", () => hang, { timeoutMs: 150 }),
    /still running at the deadline/,
  );
  assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
  release();
});

Deno.test("run: exit code, stdout, stderr and stdin", async () => {
  const r = await run("sh", [
    "-c",
    'read line; echo "out:$line"; echo err >&2; exit 3',
  ], { stdin: "hi\n" });
  assert.equal(r.code, 3, r.explain());
  assert.equal(r.stdout, "out:hi\n");
  assert.equal(r.stderr, "err\n");
  assert.match(r.explain(), /exit 3/);
  assert.deepEqual(
    (await run("sh", ["-c", `echo '{"a":[1]}'`])).json(),
    { a: [1] },
  );
  assert.throws(() => r.json(), /not one JSON document[\s\S]*out:hi/);
});

Deno.test("run: a command past its timeout is killed and the error shows its output", async () => {
  const t0 = Date.now();
  await assert.rejects(
    run("sh", ["-c", "echo started; sleep 30"], { timeoutMs: 300 }),
    /did not finish within 300 ms[\s\S]*started/,
  );
  assert.ok(Date.now() - t0 < 5000);
});

Deno.test("run: children get no BOI_* variables from the test's environment", async () => {
  const before = Deno.env.get("BOI_NODE_ID");
  Deno.env.set("BOI_NODE_ID", "leaked");
  try {
    const r = await run("sh", ["-c", 'echo "[$BOI_NODE_ID][$X]"'], {
      env: { X: "given" },
    });
    assert.equal(r.stdout, "[][given]\n");
  } finally {
    if (before === undefined) Deno.env.delete("BOI_NODE_ID");
    else Deno.env.set("BOI_NODE_ID", before);
  }
});

Deno.test({
  name: "cli: runs cli.ts and returns its exit code and output",
  ignore: !cliExists(),
  async fn() {
    const help = await cli(null, ["--help"]);
    assert.equal(help.code, 0, help.explain());
    assert.match(help.stdout + help.stderr, /dispatch/, help.explain());
    assert.deepEqual(help.command.slice(1, 5), [
      "run",
      "-q",
      "-P=cli",
      "cli.ts",
    ]);
    assert.doesNotMatch(
      help.stderr,
      /experimental/,
      "Deno's own notes are kept out",
    );
  },
});

Deno.test("processAlive / processGroupAlive: a detached tree, then SIGKILL to the group", async () => {
  const child = new Deno.Command("sh", {
    args: ["-c", "sleep 60 & sleep 60 & wait"],
    detached: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const pgid = child.pid;
  try {
    assert.equal(await processAlive(pgid), true);
    const members = await waitFor("sh and its two sleeps", async () => {
      const m = await processGroupMembers(pgid);
      return m.length === 3 ? m : notYet(m);
    }, { timeoutMs: 5000, intervalMs: 20 });
    assert.ok(members.includes(pgid));
    assert.equal(await processGroupAlive(pgid), true);
  } finally {
    Deno.kill(-pgid, "SIGKILL");
  }
  await child.status;
  await waitFor(
    `process group ${pgid} to be gone`,
    async () =>
      !await processGroupAlive(pgid) || notYet(await processGroupMembers(pgid)),
    { timeoutMs: 5000, intervalMs: 20 },
  );
  assert.equal(await processAlive(pgid), false);
  assert.equal(
    await processAlive(2 ** 22 + 1),
    false,
    "a pid that cannot exist",
  );
});

function envelope(taskId: string, over: Partial<Envelope> = {}): Envelope {
  return {
    task_id: taskId,
    spec_id: taskId.split(".")[0],
    state: "PENDING",
    state_version: 1,
    requires: {},
    run: "true",
    prompt: null,
    env: {},
    timeout_ms: null,
    depends_on: [],
    attempts: 0,
    max_attempts: 3,
    retries_left: 0,
    claimant_node_id: null,
    claim_lease_id: null,
    fence: null,
    last_error: null,
    exit_code: null,
    dispatched_at: Date.now(),
    started_at: null,
    finished_at: null,
    ran_on: null,
    cancel_requested: false,
    not_before: null,
    ...over,
  };
}

Deno.test("store: reads validate records and keep their revisions", async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  const c = etcd.client();
  await c.put(`${prefix}dispatch-queue/s1.a`).value(
    JSON.stringify(envelope("s1.a")),
  );
  await c.put(`${prefix}dispatch-queue/s1.b`).value(
    JSON.stringify(envelope("s1.b", { state: "DONE" })),
  );
  await c.put(`${prefix}dispatch-queue/s2.a`).value(
    JSON.stringify(envelope("s2.a")),
  );
  const lease = c.lease(5, { autoKeepAlive: false });
  const leaseId = await lease.grant();
  const claimPut = await lease.put(`${prefix}claims/s1.a`).value(
    JSON.stringify({
      node_id: "n1",
      lease_id: leaseId,
      claimed_at: Date.now(),
      attempt: 1,
    }),
  ).exec();

  const a = await readEnvelope(etcd, "s1.a", prefix);
  assert.equal(a?.value.state, "PENDING");
  assert.ok(a!.mod_revision > 0);
  assert.equal(await readEnvelope(etcd, "s1.zz", prefix), null);
  assert.equal(
    await readEnvelope(etcd, "s1.a"),
    null,
    "default prefix is /boi/",
  );
  assert.deepEqual(
    (await listEnvelopes(etcd, { prefix, specId: "s1" })).map((e) =>
      `${e.value.task_id}:${e.value.state}`
    ),
    ["s1.a:PENDING", "s1.b:DONE"],
  );
  assert.equal((await listEnvelopes(etcd, { prefix })).length, 3);

  const claim = await readClaim(etcd, "s1.a", prefix);
  assert.equal(claim?.value.node_id, "n1");
  assert.equal(claim?.create_revision, Number(claimPut.header.revision));
  assert.equal(claim?.lease, leaseId);
  await lease.revoke();
  assert.equal(await readClaim(etcd, "s1.a", prefix), null);

  await c.put(`${prefix}dispatch-queue/s3.bad`).value('{"task_id":"s3.bad"}');
  await assert.rejects(
    readEnvelope(etcd, "s3.bad", prefix),
    new RegExp(`${prefix}dispatch-queue/s3.bad: value does not match`),
  );
});

Deno.test("startNode: waits for the registration, captures logs, stops", async () => {
  await using etcd = await startEtcd();
  const prefix = uniquePrefix();
  await using node = await startNode(etcd, {
    nodeId: "node-h",
    prefix,
    entry: FAKE_NODE,
    caps: { "x-test-gpu": "yes" },
  });
  const rec = await readNode(etcd, "node-h", prefix);
  assert.equal(rec?.value.pid, node.pid, "registered by this very process");
  assert.equal(rec?.value.addr, node.httpAddr);
  assert.match(node.dataDir, /^\/tmp\//);
  const line = await node.waitForLog((l) => l.msg === "starting", 5000);
  assert.equal(line.caps, "x-test-gpu=yes");
  // The key is written before the line is logged and piped to us: wait for it.
  await node.waitForLog((l) => l.msg === "registered", 5000);
  const body = await fetch(`${node.url}/`).then((r) => r.text());
  assert.equal(body, "ok\n");

  await assert.rejects(
    node.waitForLog((l) => l.msg === "never said", 100),
    /log line of node node-h[\s\S]*"registered"/,
  );

  const status = await node.stop();
  assert.equal(status?.code, 0);
  assert.equal(await processAlive(node.pid), false);
  assert.deepEqual(
    await listNodes(etcd, prefix),
    [],
    "the fake revokes its lease",
  );
  assert.match(await Deno.readTextFile(node.logFile), /"registered"/);

  await node.restart();
  assert.equal((await readNode(etcd, "node-h", prefix))?.value.pid, node.pid);
});

Deno.test("startNode: a node that exits before registering fails fast with its log", async () => {
  await using etcd = await startEtcd();
  const t0 = Date.now();
  await assert.rejects(
    startNode(etcd, {
      nodeId: "node-x",
      entry: FAKE_NODE,
      env: { FAKE_NODE_EXIT: "4" },
      readyTimeoutMs: 20_000,
    }),
    /node node-x exited[\s\S]*exiting as asked/,
  );
  assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
});

Deno.test({
  name: "startNode: the real node registers under its prefix",
  ignore: !existsSync(`${REPO_ROOT}/node/main.ts`),
  async fn() {
    await using etcd = await startEtcd();
    const prefix = uniquePrefix();
    await using node = await startNode(etcd, {
      nodeId: "node-r",
      prefix,
      caps: { "x-test-gpu": "yes" },
      workersMax: 2,
    });
    const rec = await readNode(etcd, "node-r", prefix);
    assert.equal(rec?.value.pid, node.pid);
    assert.ok(rec!.lease !== "0", "the node record is bound to a lease");
    await node.stop();
  },
});

Deno.test("proxy: forwards, blackholes, resets and heals a path to etcd", async () => {
  await using etcd = await startEtcd();
  await using proxy = startProxy(etcd);
  const c = connectEtcd([proxy.endpoint], { failFast: true });
  try {
    await c.put("/h/p").value("through").options(deadline(2000));
    assert.equal(
      await c.get("/h/p").options(deadline(2000)).string(),
      "through",
    );
    assert.ok(proxy.connections > 0);

    proxy.cut("blackhole");
    const t0 = Date.now();
    await assert.rejects(
      c.get("/h/p").options(deadline(500)).string(),
      /deadline/i,
    );
    assert.ok(Date.now() - t0 >= 400, "a blackhole hangs until the deadline");
    await etcd.client().put("/h/p").value("changed"); // etcd itself is fine

    proxy.restore();
    assert.equal(
      await waitFor(
        "a read through the healed proxy",
        () => c.get("/h/p").options(deadline(1000)).string(),
        { timeoutMs: 10_000 },
      ),
      "changed",
    );

    proxy.cut("reset");
    assert.equal(proxy.connections, 0);
    await assert.rejects(c.get("/h/p").options(deadline(2000)).string());
    proxy.restore();
    await waitFor(
      "a read after the reset",
      () => c.get("/h/p").options(deadline(1000)).string(),
      { timeoutMs: 10_000 },
    );
  } finally {
    c.close();
  }
  assert.throws(() => startProxy("a:1,b:2"), /one per member/);
});

Deno.test({
  name:
    "startNode through a proxy: a partition expires the node's lease, healing re-registers it",
  ignore: !existsSync(`${REPO_ROOT}/node/main.ts`),
  async fn() {
    await using etcd = await startEtcd();
    await using proxy = startProxy(etcd);
    const prefix = uniquePrefix();
    await using node = await startNode(etcd, {
      nodeId: "node-p",
      prefix,
      endpoints: proxy.endpoint,
      leaseTtlS: 2,
    });
    const before = await readNode(etcd, "node-p", prefix);
    assert.equal(before?.value.pid, node.pid);

    proxy.cut("blackhole");
    await waitFor(
      "node-p's registration to expire while it is cut off",
      async () => (await readNode(etcd, "node-p", prefix)) === null,
      { timeoutMs: 10_000 },
    );
    assert.equal(node.running, true, "the node keeps running while cut off");

    proxy.restore();
    const after = await waitFor(
      "node-p to register again after the partition heals",
      async () => {
        const rec = await readNode(etcd, "node-p", prefix);
        return rec && rec.lease !== before!.lease ? rec : notYet(rec);
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(after.value.pid, node.pid);
  },
});
