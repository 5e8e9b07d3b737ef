import assert from "node:assert/strict";
import type { SpecRecord } from "../node/schema.ts";
import { envelope } from "./test_util.ts";
import { specCounts } from "./status.ts";

const spec = (id: string, at: number): SpecRecord => ({
  spec_id: id,
  yaml: "",
  sha256: "",
  dispatched_by: "t",
  dispatched_at: at,
  task_ids: [],
});

Deno.test("specCounts counts per committed spec, oldest first", () => {
  const { specs, uncommitted } = specCounts(
    [spec("b-aaaaaa", 2), spec("a-aaaaaa", 1), spec("c-aaaaaa", 3)],
    [
      envelope({ spec_id: "b-aaaaaa", state: "DONE" }),
      envelope({ spec_id: "b-aaaaaa", state: "RUNNING" }),
      envelope({ spec_id: "a-aaaaaa", state: "FAILED" }),
      envelope({ spec_id: "z-aaaaaa", state: "PENDING" }),
    ],
  );
  assert.deepEqual(specs.map((s) => s.spec_id), [
    "a-aaaaaa",
    "b-aaaaaa",
    "c-aaaaaa",
  ]);
  assert.equal(specs[0].counts.FAILED, 1);
  assert.equal(specs[1].counts.DONE, 1);
  assert.equal(specs[1].counts.RUNNING, 1);
  assert.equal(Object.values(specs[2].counts).reduce((a, b) => a + b), 0);
  assert.deepEqual([...uncommitted], [["z-aaaaaa", 1]]);
});
