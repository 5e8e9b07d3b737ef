/**
 * Issue 11 finding 6: mutating endpoints in open mode refuse browser
 * cross-origin requests and anything without the cluster's admin secret,
 * which the first node creates in etcd and the CLI reads from there.
 */
import assert from "node:assert/strict";
import { cli, startEtcd, startNode, waitFor } from "../harness/mod.ts";
import { ADMIN_SECRET_HEADER } from "../../node/admin_secret.ts";

/** What a web page can send without a preflight: a "simple" cross-site POST. */
const CSRF: Record<string, string> = {
  origin: "http://evil.example",
  "sec-fetch-site": "cross-site",
  "sec-fetch-mode": "no-cors",
  "content-type": "text/plain",
};

async function rejectedCount(url: string): Promise<number> {
  const m = await (await fetch(`${url}/metrics`)).text();
  const line = m.split("\n").find((l) =>
    l.startsWith("boi_dispatch_rejected_etcd_unreachable_total")
  );
  return Number(line?.split(" ").pop() ?? NaN);
}

Deno.test("admin secret: created once, shared, kept 0600 in the data dir, never shown; mutating POSTs need it and refuse browsers", async () => {
  await using etcd = await startEtcd();
  await using a = await startNode(etcd, { nodeId: "sec-a" });
  await using b = await startNode(etcd, { nodeId: "sec-b" });
  const key = "/boi/cluster/admin_secret";
  const raw = await waitFor(
    "the admin secret in etcd",
    () => etcd.client().get(key).string(),
  );
  const rec = JSON.parse(raw);
  assert.match(rec.secret, /^[A-Za-z0-9_-]{43}$/);
  const secret: string = rec.secret;
  // Both nodes hold the same secret, each in a 0600 file.
  for (const n of [a, b]) {
    const file = `${n.dataDir}/admin_secret`;
    const text = await waitFor(
      `${file}`,
      () => Deno.readTextFile(file).catch(() => null),
    );
    assert.equal(text.trim(), secret);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
  }
  assert.equal(
    JSON.parse(await etcd.client().get(key).string() ?? "").secret,
    secret,
  );

  const posts = [
    "/internal/logs/sweep",
    "/internal/dispatch-rejected",
    "/internal/plugins/pool/restart",
  ];
  const before = await rejectedCount(a.url);
  for (const path of posts) {
    // A CSRF request from any web page, even one that guessed the secret.
    for (
      const headers of <Record<string, string>[]> [
        CSRF,
        { ...CSRF, [ADMIN_SECRET_HEADER]: secret },
        { origin: "null", [ADMIN_SECRET_HEADER]: secret },
        { "sec-fetch-site": "same-site", [ADMIN_SECRET_HEADER]: secret },
      ]
    ) {
      const r = await fetch(`${a.url}${path}`, {
        method: "POST",
        headers,
        body: "x",
      });
      assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}`);
      assert.match(await r.text(), /browser requests may not change anything/);
      assert.equal(r.headers.get("access-control-allow-origin"), null);
    }
    // No secret, or a wrong one: 403 naming the header.
    const bad: Record<string, string>[] = [{}, {
      [ADMIN_SECRET_HEADER]: "x".repeat(43),
    }];
    for (const headers of bad) {
      const r = await fetch(`${a.url}${path}`, { method: "POST", headers });
      assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}`);
      assert.match(await r.text(), /x-boi-admin-secret/);
    }
  }
  assert.equal(await rejectedCount(a.url), before, "a refused POST counted");
  // With the secret (what the CLI sends) it works.
  const ok = await fetch(`${a.url}/internal/dispatch-rejected`, {
    method: "POST",
    headers: { [ADMIN_SECRET_HEADER]: secret },
  });
  assert.equal(ok.status, 200, await ok.text());
  assert.equal(await rejectedCount(a.url), before + 1);
  const sweep = await cli(etcd, ["logs", "sweep", "--json"]);
  assert.equal(sweep.code, 0, sweep.stderr);
  assert.equal(JSON.parse(sweep.stdout).length, 2);
  const restart = await cli(etcd, [
    "plugin",
    "restart",
    "workspace",
    "--node",
    "sec-b",
  ], {
    timeoutMs: 60_000,
  });
  assert.equal(restart.code, 0, restart.stderr);
  // Never shown on the dashboard's state, the cached view or the metrics.
  for (const path of ["/api/state", "/internal/view", "/metrics"]) {
    const body = await (await fetch(`${a.url}${path}`)).text();
    assert.ok(!body.includes(secret), `${path} shows the secret`);
  }
});

Deno.test("admin secret: the CLI without one in etcd says so, and a node keeps a damaged record as it is", async () => {
  await using etcd = await startEtcd();
  const key = "/boi/cluster/admin_secret";
  await etcd.client().put(key).value("{not json");
  await using a = await startNode(etcd, { nodeId: "sec-c" });
  const r = await cli(etcd, ["logs", "sweep"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cluster\/admin_secret: invalid record/);
  await a.waitForLog((l) => /admin secret not loaded/.test(String(l.msg)));
  assert.equal(await etcd.client().get(key).string(), "{not json");
  await etcd.client().delete().key(key);
  const secret = await waitFor(
    "a node creates the secret once the damaged record is gone",
    () => etcd.client().get(key).string(),
    { timeoutMs: 15_000 },
  );
  assert.match(JSON.parse(secret).secret, /^[A-Za-z0-9_-]{43}$/);
});
