import assert from "node:assert/strict";
import type { CapsRecord, NodeRecord } from "../node/schema.ts";
import { mergeCaps, nodeRows } from "./nodes.ts";

const caps: CapsRecord = {
  static: { os: "linux", arch: "x86_64", region: "eu" },
  dynamic: { workers_busy: 1, workers_max: 4, health: "ok", region: "us" },
};

Deno.test("mergeCaps lays dynamic string values over static ones", () => {
  assert.deepEqual(mergeCaps(caps), {
    os: "linux",
    arch: "x86_64",
    region: "us",
  });
  assert.deepEqual(mergeCaps(undefined), {});
});

Deno.test("nodeRows joins nodes and caps, sorted by id", () => {
  const node = (id: string): NodeRecord => ({
    node_id: id,
    addr: `${id}:7001`,
    version: "1",
    started_at: 0,
    pid: 1,
  });
  const rows = nodeRows(
    [node("b"), node("a")],
    new Map([["a", caps]]),
  );
  assert.deepEqual(rows, [
    {
      node_id: "a",
      addr: "a:7001",
      caps: { os: "linux", arch: "x86_64", region: "us" },
      health: "ok",
      workers_busy: 1,
      workers_max: 4,
    },
    {
      node_id: "b",
      addr: "b:7001",
      caps: {},
      health: null,
      workers_busy: null,
      workers_max: null,
    },
  ]);
});
