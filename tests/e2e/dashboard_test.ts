/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by
 * npm `playwright-core`; scripts/setup.sh installs both). No skip: if the
 * browser cannot start, this test fails and says why.
 *
 * Leaves tests/artifacts/dashboard.png and dashboard-tail.png; writes
 * docs/dashboard.png (the README's picture) when it is missing or when
 * BOI_UPDATE_SCREENSHOTS=1.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import {
  artifactsDir,
  listEnvelopes,
  makeTempDir,
  REPO_ROOT,
  waitFor,
} from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";

export const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test({
  name:
    "dashboard in headless Chromium: 3 nodes, a running spec's progress changes without reload, a live tail follows a task on another node",
  // playwright-core keeps a few handles of its own past close().
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    assert.ok(
      await exists(CHROMIUM),
      `${CHROMIUM} is missing: run scripts/setup.sh (apt-get install chromium)`,
    );
    await using c = await startCluster([
      "node-a",
      { nodeId: "node-b", caps: { "x-acme-gpu": "a100" } },
      "node-c",
    ]);
    // Some history: a finished spec with a failure in it.
    const warm = await dispatch(
      c,
      `name: nightly-docs
tasks:
  - { id: fetch, run: "echo fetched" }
  - { id: build, run: "echo built", depends_on: [fetch] }
  - { id: lint, run: "echo 'lint: 2 warnings' >&2; exit 1" }
`,
    );
    await waitTerminal(c, warm.spec_id);

    const profile = await makeTempDir("boi-chromium-");
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1360, height: 1000 },
      timeout: 60_000,
    }).catch((e) => {
      throw new Error(
        `Chromium (${CHROMIUM}) did not start under playwright-core: ${
          (e as Error).message
        }`,
      );
    });
    try {
      const page = await ctx.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      const a = c.node("node-a");
      await page.goto(`${a.url}/`);
      await waitFor(
        "3 node cards",
        async () => await page.locator("[data-node-id]").count() === 3,
        { timeoutMs: 15_000 },
      );
      const ids = await page.locator("[data-node-id]").evaluateAll(
        (els) => els.map((e) => e.getAttribute("data-node-id")),
      );
      assert.deepEqual(ids, ["node-a", "node-b", "node-c"]);
      // A marker that a reload would wipe.
      await page.evaluate(() => {
        (globalThis as unknown as { marker: number }).marker = 42;
      });

      // Dispatched while the page is open: it appears and progresses live.
      const steps = (n: number) =>
        `'for i in $(seq ${n}); do echo "step $i of ${n} on $BOI_NODE_ID"; sleep 0.3; done'`;
      const { spec_id } = await dispatch(
        c,
        `name: release-build
tasks:
${
          [2, 3, 4, 5, 6, 7, 8].map((n, i) =>
            `  - { id: shard-${i}, run: ${steps(n)} }`
          ).join("\n")
        }
  - { id: render, run: ${steps(40)}, requires: { x-acme-gpu: a100 } }
  - { id: package, run: "echo packaged", depends_on: [shard-0, shard-1] }
`,
      );
      const row = `tr[data-spec-id="${spec_id}"]`;
      await page.waitForSelector(row, { timeout: 15_000 });
      const finished = async () =>
        Number(await page.getAttribute(row, "data-finished"));
      const total = Number(await page.getAttribute(row, "data-total"));
      assert.equal(total, 9);
      const first = await finished();
      await waitFor(
        `${spec_id} progress beyond ${Math.max(first, 2)}`,
        async () => await finished() > Math.max(first, 2),
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      const later = await finished();
      console.log(
        `progress of ${spec_id} went ${first} → ${later} of ${total}`,
      );
      assert.ok(later > first && later < total, `${first} → ${later}`);
      assert.equal(
        await page.evaluate(() =>
          (globalThis as unknown as { marker: number }).marker
        ),
        42,
        "the page updated itself, without a reload",
      );
      await page.click(row); // filter the task list to the running spec
      const shot = `${artifactsDir()}/dashboard.png`;
      await page.screenshot({ path: shot, fullPage: true });
      const docs = `${REPO_ROOT}/docs/dashboard.png`;
      if (
        !await exists(docs) || Deno.env.get("BOI_UPDATE_SCREENSHOTS") === "1"
      ) {
        await Deno.mkdir(`${REPO_ROOT}/docs`, { recursive: true });
        await Deno.copyFile(shot, docs);
      }

      // The live tail of a task that runs on node-b, opened from node-a's page.
      // It runs 12 s: at load 20 opening the tail page took longer than the
      // 4.8 s it used to run, and the page found it ended, not following.
      const render = `${spec_id}.render`;
      await waitFor(
        `${render} RUNNING on node-b`,
        async () => {
          const e = (await listEnvelopes(c.etcd, { specId: spec_id }))
            .find((x) => x.value.task_id === render)?.value;
          return e?.state === "RUNNING" && e.claimant_node_id === "node-b";
        },
      );
      const owner = c.node("node-b");
      const link = `a.tail-link[href="/tail/${render}"]`;
      await page.waitForSelector(link);
      const [tail] = await Promise.all([
        ctx.waitForEvent("page"),
        page.click(link),
      ]);
      await waitFor(
        "the tail page shows the task's output",
        async () => /step 1 of/.test(await tail.textContent("#log") ?? ""),
        { timeoutMs: 10_000 },
      );
      const status = await tail.textContent("#status");
      assert.equal(
        status,
        `following node-b at ${owner.httpAddr}`,
        "the tail page reads the log from the node that has it",
      );
      await tail.screenshot({ path: `${artifactsDir()}/dashboard-tail.png` });
      await waitFor(
        "the tail page to say the task ended",
        async () =>
          /^ended: DONE/.test(await tail.textContent("#status") ?? ""),
        { timeoutMs: 20_000 },
      );
      const text = await tail.textContent("#log");
      const onDisk = await Deno.readTextFile(
        `${owner.dataDir}/logs/${spec_id}/${render}.log`,
      );
      assert.equal(text, onDisk, "the page shows the whole log, once");

      await waitFor(
        `${spec_id} at ${total}/${total}`,
        async () => await finished() === total,
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      assert.deepEqual(errors, [], "no errors in the page");
    } finally {
      await ctx.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
