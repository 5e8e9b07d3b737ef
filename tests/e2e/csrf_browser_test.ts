/**
 * Issue 11 finding 6 in a real browser: a page from another origin that the
 * operator opens posts to the node's mutating endpoints (no-cors fetches and
 * a plain form, what CSRF uses). None of them may change anything.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { makeTempDir, startEtcd, startNode, waitFor } from "../harness/mod.ts";

// As dashboard_test.ts (importing it would register its test here too).
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"];

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ").pop() ?? NaN);
}

/** How many times the node started its pool plugin (one per incarnation). */
function poolSpawns(node: { logs(): { msg?: unknown; plugin?: unknown }[] }) {
  return node.logs().filter((l) =>
    l.msg === "plugin spawned" && l.plugin === "pool"
  ).length;
}

Deno.test({
  name:
    "CSRF: a page on another origin posting to the node's mutating endpoints changes nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using etcd = await startEtcd();
    await using node = await startNode(etcd, { nodeId: "csrf-a" });
    await waitFor(
      "the admin secret loaded",
      () =>
        Deno.stat(`${node.dataDir}/admin_secret`).then(() => true, () => null),
    );
    const page = `<!doctype html><title>evil</title>
<form id="f" method="POST" enctype="text/plain"
      action="${node.url}/internal/dispatch-rejected">
  <input name="x" value="y"></form>
<script>
  const posts = ["/internal/dispatch-rejected", "/internal/logs/sweep",
                 "/internal/plugins/pool/restart"].map((p) =>
    fetch(${JSON.stringify(node.url)} + p, { method: "POST", mode: "no-cors",
      body: "x" }).then(() => "sent", (e) => "error " + e));
  Promise.all(posts).then((r) => {
    document.title = "fetched " + r.join(",");
    document.getElementById("f").submit();
  });
</script>`;
    const evil = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(page, { headers: { "content-type": "text/html" } }),
    );
    const before = {
      rejected: await metric(
        node.url,
        "boi_dispatch_rejected_etcd_unreachable_total",
      ),
      pool: poolSpawns(node),
    };
    const profile = await makeTempDir("boi-chromium-");
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    try {
      const tab = await ctx.newPage();
      await tab.goto(`http://127.0.0.1:${evil.addr.port}/`);
      // The form's navigation shows the node's answer: proof the requests
      // reached the node, and what it said.
      const body = await waitFor(
        "the form's answer from the node",
        async () => {
          const url = tab.url();
          if (!url.startsWith(node.url)) return null;
          return await tab.textContent("body").catch(() => null);
        },
        { timeoutMs: 20_000 },
      );
      assert.match(body, /browser requests may not change anything/);
      assert.equal(
        await metric(node.url, "boi_dispatch_rejected_etcd_unreachable_total"),
        before.rejected,
        "a cross-origin POST was counted",
      );
      assert.equal(poolSpawns(node), before.pool, "the pool was restarted");
    } finally {
      await ctx.close();
      await evil.shutdown();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
