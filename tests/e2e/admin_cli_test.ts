/**
 * The degraded-mode and admin commands of the CLI, against a real etcd with
 * node records written by the test and a stand-in node HTTP server, so the
 * edge cases (refusals, timeouts, stale caches, vanished nodes) are quick to
 * reach. The same commands against real nodes: outage_test.ts and
 * pause_drain_test.ts.
 */
import assert from "node:assert/strict";
import { cli, freePort, startEtcd, waitFor } from "../harness/mod.ts";
import { DrainRequest } from "../../node/schema.ts";
import { since, specFile, specYaml } from "./outage_util.ts";

/** Nobody listens here: etcd calls fail at once with "connection refused". */
const DEAD_ETCD = `127.0.0.1:${freePort()}`;

function nodeRecord(id: string) {
  return {
    node_id: id,
    addr: "127.0.0.1:7001",
    version: "0.1.0",
    started_at: Date.now(),
    pid: 1,
  };
}

function capsRecord(dynamic: Record<string, unknown> = {}) {
  return {
    static: { os: "linux", arch: "x86_64" },
    dynamic: { workers_busy: 0, workers_max: 4, health: "ok", ...dynamic },
  };
}

/** A stand-in for a node's HTTP: answers `/internal/view` with `view`, counts rejected dispatches. */
function fakeNode(view: () => unknown) {
  let rejected = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/internal/dispatch-rejected" && req.method === "POST") {
        rejected++;
        return Response.json({ counted: true });
      }
      if (path === "/internal/view") return Response.json(view());
      return new Response("not found", { status: 404 });
    },
  );
  return {
    addr: `127.0.0.1:${server.addr.port}`,
    get rejected() {
      return rejected;
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

function cachedView(ageMs: number) {
  const now = Date.now();
  return {
    node_id: "node-z",
    generated_at: now,
    etcd_up: false,
    etcd_down_since: now - ageMs,
    last_etcd_contact: now - ageMs,
    cache_age_ms: ageMs,
    membership_cache_ttl_s: 30,
    dispatch_paused: false,
    pending_flush: 0,
    nodes: [{
      node_id: "node-z",
      addr: "127.0.0.1:7001",
      caps: { os: "linux" },
      health: "ok",
      workers_busy: 1,
      workers_max: 4,
      draining: false,
    }],
    specs: [{
      spec_id: "s-abcdef",
      dispatched_at: now - 60_000,
      counts: { PENDING: 1, RUNNING: 2, DONE: 3 },
    }],
  };
}

Deno.test("node drain: unknown node, pending flush refusal, --force, timeouts, stale 'drained', a vanishing node, undrain", async (t) => {
  await using etcd = await startEtcd();
  const c = etcd.client();
  const put = (k: string, v: unknown) => c.put(k).value(JSON.stringify(v));

  await t.step("an unknown node is refused with one line, exit 1", async () => {
    const r = await cli(etcd, ["node", "drain", "ghost"]);
    assert.equal(r.code, 1, r.explain());
    assert.equal(
      r.stderr,
      "node ghost is not live: nothing is registered at /boi/nodes/ghost\n",
    );
    assert.equal(await c.get("/boi/cluster/drain/ghost").string(), null);
  });

  await put("/boi/nodes/n1", nodeRecord("n1"));
  await put("/boi/caps/n1", capsRecord({ pending_flush: 2 }));
  await t.step(
    "results in the pending flush: refused unless --force",
    async () => {
      const r = await cli(etcd, ["node", "drain", "n1"]);
      assert.equal(r.code, 1, r.explain());
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
      assert.match(
        r.stderr,
        /^node n1 has 2 result\(s\) in its pending flush .* or use --force\n$/,
      );
      assert.equal(await c.get("/boi/cluster/drain/n1").string(), null);

      const forced = await cli(etcd, [
        "node",
        "drain",
        "n1",
        "--force",
        "--timeout",
        "1s",
      ]);
      assert.equal(forced.code, 1, forced.explain());
      assert.match(forced.stderr, /^timed out after 1s: n1: /);
      const req = DrainRequest.parse(
        JSON.parse((await c.get("/boi/cluster/drain/n1").string())!),
      );
      assert.match(req.by, /@/);
    },
  );

  await t.step(
    "a 'drained' published before the request does not count",
    async () => {
      await put("/boi/caps/n1", capsRecord({ drain_state: "drained" }));
      await c.delete().key("/boi/cluster/drain/n1");
      const r = await cli(etcd, ["node", "drain", "n1", "--timeout", "1500ms"]);
      assert.equal(r.code, 1, r.explain());
      assert.match(r.stderr, /^timed out after 1500ms: /);
    },
  );

  await t.step(
    "drained once the node says so after the request: exit 0",
    async () => {
      await c.delete().key("/boi/cluster/drain/n1");
      await put("/boi/caps/n1", capsRecord({ workers_busy: 1 }));
      const run = cli(etcd, ["node", "drain", "n1", "--json"]);
      await waitFor(
        "the drain request",
        async () => await c.get("/boi/cluster/drain/n1").string() !== null,
      );
      await put(
        "/boi/caps/n1",
        capsRecord({ workers_busy: 1, drain_state: "draining" }),
      );
      await new Promise((r) => setTimeout(r, 700));
      await put("/boi/caps/n1", capsRecord({ drain_state: "drained" }));
      const r = await run;
      assert.equal(r.code, 0, r.explain());
      const doc = r.json<{ node_id: string; drain_state: string }>();
      assert.equal(doc.node_id, "n1");
      assert.equal(doc.drain_state, "drained");
    },
  );

  await t.step("already draining is fine", async () => {
    const r = await cli(etcd, ["node", "drain", "n1", "--timeout", "5s"]);
    assert.equal(r.code, 0, r.explain());
    assert.match(r.stdout, /^n1 is already draining/);
    assert.match(r.stdout, /node n1 drained/);
  });

  await t.step("the node vanishes while draining: exit 1", async () => {
    await put("/boi/nodes/n2", nodeRecord("n2"));
    await put("/boi/caps/n2", capsRecord({ workers_busy: 1 }));
    const run = cli(etcd, ["node", "drain", "n2", "--timeout", "20s"]);
    await waitFor(
      "the drain request",
      async () => await c.get("/boi/cluster/drain/n2").string() !== null,
    );
    await c.delete().key("/boi/nodes/n2");
    await c.delete().key("/boi/caps/n2");
    const r = await run;
    assert.equal(r.code, 1, r.explain());
    assert.match(r.stderr, /^node n2 is gone .* node undrain n2 clears it\n$/);
  });

  await t.step(
    "cluster status lists drains, degraded nodes and pending flushes",
    async () => {
      await put("/boi/nodes/n3", nodeRecord("n3"));
      await put(
        "/boi/caps/n3",
        capsRecord({ health: "degraded", pending_flush: 4 }),
      );
      const r = await cli(etcd, ["cluster", "status"]);
      assert.equal(r.code, 0, r.explain());
      assert.equal(
        r.stdout,
        [
          "dispatch: running",
          "nodes: 2 live, 1 degraded (n3)",
          "draining: n1 (drained), n2 (not live)",
          "pending flush: n3 4",
          "",
        ].join("\n"),
      );
    },
  );

  await t.step("undrain deletes the request; twice is fine", async () => {
    const r = await cli(etcd, ["node", "undrain", "n1"]);
    assert.equal(r.code, 0, r.explain());
    assert.equal(r.stdout, "node n1 undrained: it claims new tasks again\n");
    assert.equal(await c.get("/boi/cluster/drain/n1").string(), null);
    const again = await cli(etcd, ["node", "undrain", "n1"]);
    assert.equal(again.code, 0, again.explain());
    assert.equal(again.stdout, "node n1 is not draining; nothing changed\n");
  });

  await t.step("etcd unreachable: exit 3", async () => {
    const r = await cli(DEAD_ETCD, ["node", "drain", "n1"]);
    assert.equal(r.code, 3, r.explain());
    assert.match(r.stderr, /^etcd unreachable: /);
  });
});

Deno.test("status --stale-ok: answered from the node's cache, stamped; refused past 30 s or with no node; plain status exits 3", async (t) => {
  let age = 4200;
  await using node = fakeNode(() => cachedView(age));

  await t.step("fresh enough: STALE stamp, specs and nodes", async () => {
    const r = await cli(DEAD_ETCD, [
      "status",
      "--stale-ok",
      "--node",
      node.addr,
    ]);
    assert.equal(r.code, 0, r.explain());
    const lines = r.stdout.split("\n");
    assert.match(
      lines[0],
      /^STALE \(cache age 4\.2s\) from node node-z: etcd unreachable: http:\/\/127\.0\.0\.1:\d+: /,
    );
    assert.match(lines[1], /^node node-z lost etcd 4\.[2-9]s ago$/);
    assert.match(r.stdout, /^s-abcdef\s+6\s+0\s+1\s+0\s+2\s+3\s+0\s+0\s+1m/m);
    assert.match(r.stdout, /^node-z\s+127\.0\.0\.1:7001\s+ok\s+1\/4\s+-$/m);
  });

  await t.step("the node's address from BOI_HTTP_ADDR; --json", async () => {
    const r = await cli(DEAD_ETCD, ["status", "--stale-ok", "--json"], {
      env: { BOI_HTTP_ADDR: node.addr },
    });
    assert.equal(r.code, 0, r.explain());
    const doc = r.json<Record<string, unknown>>();
    assert.equal(doc.stale, true);
    assert.equal(doc.cache_age_ms, 4200);
    assert.equal(doc.source_node, "node-z");
    assert.deepEqual(doc.specs, [{
      spec_id: "s-abcdef",
      counts: {
        BLOCKED: 0,
        PENDING: 1,
        CLAIMED: 0,
        RUNNING: 2,
        DONE: 3,
        FAILED: 0,
        CANCELLED: 0,
      },
    }]);
  });

  await t.step("older than 30 s: refused, exit 3", async () => {
    age = 30_001;
    const r = await cli(DEAD_ETCD, [
      "status",
      "--stale-ok",
      "--node",
      node.addr,
    ]);
    assert.equal(r.code, 3, r.explain());
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^etcd unreachable: .*; the cached view of node node-z is 30s old, older than the 30s it may be used for\n$/,
    );
    age = 1000;
  });

  await t.step("no node answers: exit 3", async () => {
    const r = await cli(DEAD_ETCD, [
      "status",
      "--stale-ok",
      "--node",
      `127.0.0.1:${freePort()}`,
    ]);
    assert.equal(r.code, 3, r.explain());
    assert.match(r.stderr, /; no cached view either: the node at /);
  });

  await t.step("without --stale-ok the node is not asked: exit 3", async () => {
    const r = await cli(DEAD_ETCD, ["status", "--node", node.addr]);
    assert.equal(r.code, 3, r.explain());
    assert.match(r.stderr, /^etcd unreachable: [^;]*\n$/);
  });

  await t.step("a bad --node is a usage error", async () => {
    const r = await cli(DEAD_ETCD, ["status", "--stale-ok", "--node", "x"]);
    assert.equal(r.code, 2, r.explain());
    assert.match(r.stderr, /--node must be host:port/);
  });
});

Deno.test("dispatch with etcd unreachable: exit 3 at once, the local node is told (best effort)", async () => {
  await using node = fakeNode(() => ({}));
  const file = await specFile(specYaml("refused", 1, "'true'"));
  const t0 = performance.now();
  const r = await cli(DEAD_ETCD, ["dispatch", file, "--node", node.addr]);
  const took = since(t0);
  assert.equal(r.code, 3, r.explain());
  assert.match(r.stderr, /^etcd unreachable: http:\/\/127\.0\.0\.1:\d+: /);
  assert.equal(node.rejected, 1);
  // No node listening: still exit 3, the report is dropped.
  const alone = await cli(DEAD_ETCD, [
    "dispatch",
    file,
    "--node",
    `127.0.0.1:${freePort()}`,
  ]);
  assert.equal(alone.code, 3, alone.explain());
  console.log(`refused dispatch exited 3 after ${took} ms`);
});
