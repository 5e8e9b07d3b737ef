import assert from "node:assert/strict";
import {
  hrwBefore,
  hrwOwner,
  hrwRank,
  hrwScore,
  hrwScoreOrder,
  hrwWinner,
} from "./hrw.ts";

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

Deno.test("hrwRank, hrwWinner, hrwOwner, hrwBefore and hrwScoreOrder follow the full 64-bit scores (not only the memoized top 53 bits)", () => {
  const nodes = Array.from({ length: 9 }, (_, i) => `node-${i}`);
  const byScore = (task: string) =>
    [...nodes].sort((a, b) => {
      const sa = hrwScore(task, a), sb = hrwScore(task, b);
      return sa === sb ? (a < b ? -1 : 1) : sa > sb ? -1 : 1;
    });
  const tasks = Array.from({ length: 300 }, (_, i) => `s${i % 5}.t${i}`);
  for (const task of tasks) {
    const want = byScore(task);
    assert.deepEqual(hrwRank(task, [...nodes].reverse()), want, task);
    assert.equal(hrwWinner(task, nodes), want[0], task);
    const draining = new Set([want[0], nodes[task.length % 9]]);
    assert.equal(
      hrwOwner(
        task,
        nodes.map((id) => ({ node_id: id, draining: draining.has(id) })),
      ),
      want.find((id) => !draining.has(id)),
      task,
    );
    assert.equal(hrwBefore(task, want[3], want[4]), true, task);
    assert.equal(hrwBefore(task, want[4], want[3]), false, task);
  }
  for (let i = 1; i < tasks.length; i++) {
    const [a, b] = [tasks[i - 1], tasks[i]];
    const sa = hrwScore(a, "node-0"), sb = hrwScore(b, "node-0");
    assert.equal(
      hrwScoreOrder(a, b, "node-0"),
      sa === sb ? 0 : sa > sb ? -1 : 1,
    );
  }
  assert.equal(hrwScoreOrder("s1.t1", "s1.t1", "node-0"), 0);
});
