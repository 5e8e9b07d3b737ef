/** `token mint --ttl` (SPEC §10–§11) under bad input: a usage error naming the flag and the value as typed, before any node is asked. */
import assert from "node:assert/strict";
import type { Io } from "./context.ts";
import { main } from "./main.ts";

async function run(args: string[]) {
  let err = "";
  const io: Io = {
    out: () => {},
    err: (t) => err += t,
    isTty: false,
    columns: () => 0,
    env: () => undefined,
    now: () => 0,
  };
  return { code: await main(args, io), err };
}

Deno.test("token mint --ttl: out of range or not whole seconds is exit 2 with the value as typed", async () => {
  for (const v of ["99999h", "1s", "1500ms"]) {
    const r = await run([
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
