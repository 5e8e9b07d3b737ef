/** `token mint --ttl` (SPEC §10–§11) under bad input: a usage error naming the flag and the value as typed, before any node is asked. */
import { runCli } from "./test_util.ts";
import assert from "node:assert/strict";

Deno.test("token mint --ttl: out of range or not whole seconds is exit 2 with the value as typed", async () => {
  for (const v of ["99999h", "1s", "1500ms"]) {
    const r = await runCli([
      "token",
      "mint",
      "--ttl",
      v,
      "--node",
      "127.0.0.1:1",
      "--etcd",
      "127.0.0.1:1",
    ]);
    assert.equal(r.code, 2, `${v}: ${r.err}`);
    assert.equal(
      r.err.trim(),
      `error: option '--ttl <duration>' argument '${v}' is invalid. must be whole seconds from 2s to 86400s (24h): got ${
        JSON.stringify(v)
      }`,
    );
  }
});
