import assert from "node:assert/strict";
import { COLLECTIONS, Keys } from "./keys.ts";

Deno.test("keys.parse: every collection, ids with slashes, and what is not a key of ours", () => {
  const keys = new Keys("/boi/");
  for (const c of COLLECTIONS) {
    assert.deepEqual(keys.parse(`/boi/${c}/x.y`), { collection: c, id: "x.y" });
  }
  assert.deepEqual(keys.parse(keys.drain("node-a")), {
    collection: "cluster",
    id: "drain/node-a",
  });
  assert.deepEqual(keys.parse(keys.plugin("node-a", "pool")), {
    collection: "plugins",
    id: "node-a/pool",
  });
  assert.deepEqual(keys.parse("/boi/nodes/"), { collection: "nodes", id: "" });
  for (
    const bad of [
      "/boi/nodes",
      "/boi/node/x",
      "/boi/nodesx/x",
      "/boi/claim/x",
      "/boi/Claims/x",
      "/boi//x",
      "/boi/",
      "/other/nodes/x",
      "boi/nodes/x",
      "",
    ]
  ) assert.equal(keys.parse(bad), null, bad);
  assert.deepEqual(new Keys("/p/q/").parse("/p/q/specs/s1"), {
    collection: "specs",
    id: "s1",
  });
});
