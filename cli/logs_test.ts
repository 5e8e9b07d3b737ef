import assert from "node:assert/strict";
import { formatBytes, formatOutcome, sweepNode } from "./logs.ts";
import type { SweepReport } from "../node/shell/retention.ts";

const DAY = 24 * 3600 * 1000;

function report(over: Partial<SweepReport> = {}): SweepReport {
  return {
    node_id: "node-a",
    at: 10 * DAY,
    policy: { max_age_ms: 7 * DAY, max_spec_bytes: 100 * 1024 * 1024 },
    scanned: 3,
    scanned_bytes: 115_343_360,
    deleted: [],
    freed_bytes: 0,
    errors: [],
    ...over,
  };
}

Deno.test("logs: byte sizes", () => {
  assert.equal(formatBytes(17), "17 B");
  assert.equal(formatBytes(12_800), "12.5 KiB");
  assert.equal(formatBytes(110 * 1024 * 1024), "110.0 MiB");
});

Deno.test("logs sweep: one node's report, deleted or not, or its failure", () => {
  assert.deepEqual(
    formatOutcome({
      node_id: "node-a",
      addr: "h:1",
      ok: true,
      report: report(),
      error: null,
    }),
    ["node-a: nothing to delete (3 logs, 110.0 MiB)"],
  );
  assert.deepEqual(
    formatOutcome({
      node_id: "node-a",
      addr: "h:1",
      ok: true,
      report: report({
        deleted: [{
          path: "r-x/r-x.old.log",
          spec_id: "r-x",
          task_id: "r-x.old",
          size: 110 * 1024 * 1024,
          mtime: 2 * DAY,
          reason: "age",
        }],
        freed_bytes: 110 * 1024 * 1024,
      }),
      error: null,
    }),
    [
      "node-a: deleted 1 log, 110.0 MiB freed (2 kept)",
      "  r-x/r-x.old.log  110.0 MiB  modified 8d00h ago  (terminal, older than the age limit)",
    ],
  );
  assert.deepEqual(
    formatOutcome({
      node_id: "node-b",
      addr: "h:2",
      ok: false,
      report: null,
      error: "cannot reach h:2: refused",
    }),
    ["node-b: sweep failed: cannot reach h:2: refused"],
  );
});

Deno.test("logs sweep: POSTs to the node and reads its report; errors are outcomes", async () => {
  const seen: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      seen.push(
        `${req.method} ${new URL(req.url).pathname} ${
          req.headers.get("x-boi-admin-secret")
        }`,
      );
      return Response.json(report());
    },
  );
  try {
    const addr = `127.0.0.1:${server.addr.port}`;
    const node = {
      node_id: "node-a",
      addr,
      version: "0",
      started_at: 0,
      pid: 1,
    };
    const headers = { "x-boi-admin-secret": "s3cret" };
    const ok = await sweepNode(node, headers);
    assert.equal(ok.ok, true);
    assert.equal(ok.report?.scanned, 3);
    assert.deepEqual(seen, ["POST /internal/logs/sweep s3cret"]);
    const bad = await sweepNode({ ...node, addr: "127.0.0.1:1" }, headers);
    assert.equal(bad.ok, false);
    assert.match(bad.error!, /cannot reach 127\.0\.0\.1:1/);
  } finally {
    await server.shutdown();
  }
});
