import assert from "node:assert/strict";
import { hrwBefore, hrwRank, hrwScore, hrwWinner } from "./hrw.ts";

const hex = (n: bigint) => n.toString(16).padStart(16, "0");
const NODES = ["node-a", "node-b", "node-c"];

Deno.test("hrw matches the SPEC §5 vectors", () => {
  const vectors: Record<string, [string, string][]> = {
    "hello.build": [
      ["node-c", "ce6378449e524783"],
      ["node-a", "70459a962241a6e9"],
      ["node-b", "441e165ac60cad06"],
    ],
    "s1.t1": [
      ["node-a", "fc52f9b816ea39a0"],
      ["node-c", "cdd3e3f74d5b72a9"],
      ["node-b", "a23fb38fd17c41aa"],
    ],
    "demo-7f3a.render-42": [
      ["node-c", "bce1f81aa6215abb"],
      ["node-b", "4ada47cd4ab879e7"],
      ["node-a", "05f381a3b921350b"],
    ],
  };
  for (const [task, expected] of Object.entries(vectors)) {
    for (const [node, score] of expected) {
      assert.equal(hex(hrwScore(task, node)), score, `${task}/${node}`);
    }
    assert.deepEqual(hrwRank(task, NODES), expected.map(([n]) => n), task);
  }
});

Deno.test("hrw rank does not depend on input order", () => {
  assert.deepEqual(
    hrwRank("s1.t1", ["node-c", "node-b", "node-a"]),
    hrwRank("s1.t1", NODES),
  );
});

Deno.test("hrwBefore and hrwWinner agree with hrwRank", () => {
  const nodes = ["node-a", "node-b", "node-c", "node-d"];
  for (let i = 0; i < 200; i++) {
    const task = `s${i % 7}.t${i}`;
    const rank = hrwRank(task, nodes);
    assert.equal(hrwWinner(task, nodes), rank[0]);
    for (const a of nodes) {
      for (const b of nodes) {
        if (a !== b) {
          assert.equal(
            hrwBefore(task, a, b),
            rank.indexOf(a) < rank.indexOf(b),
          );
        }
      }
    }
  }
  assert.equal(hrwWinner("x", []), undefined);
});
