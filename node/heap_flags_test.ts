import assert from "node:assert/strict";
import { NODE_SEMI_SPACE_MIB, nodeHeapFlags } from "./heap_flags.ts";

Deno.test("the node's young generation is capped at 16 MiB semi-spaces", () => {
  assert.deepEqual(nodeHeapFlags(undefined), [
    `--v8-flags=--max-semi-space-size=${NODE_SEMI_SPACE_MIB}`,
  ]);
  assert.equal(NODE_SEMI_SPACE_MIB, 16);
  assert.deepEqual(nodeHeapFlags("--trace-gc"), [
    "--v8-flags=--max-semi-space-size=16",
  ]);
});

Deno.test("an operator's DENO_V8_FLAGS semi-space size is not overridden", () => {
  assert.deepEqual(nodeHeapFlags("--max-semi-space-size=4"), []);
  assert.deepEqual(nodeHeapFlags("--trace-gc,--max-semi-space-size=32"), []);
});
