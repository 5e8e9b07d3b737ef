/** SPEC §11 defaults from the environment: a bad value names the variable it came from, not the flag nobody typed. */
import assert from "node:assert/strict";
import type { Io } from "./context.ts";
import { main } from "./main.ts";

async function run(args: string[], env: Record<string, string>) {
  let err = "";
  const io: Io = {
    out: () => {},
    err: (t) => err += t,
    isTty: false,
    columns: () => 0,
    env: (name) => env[name],
    now: () => 0,
  };
  return { code: await main(args, io), err: err.trim() };
}

Deno.test("cli env: BOI_KEY_PREFIX and BOI_ETCD_ENDPOINTS are named when they are the bad value", async () => {
  const p = await run(["nodes"], { BOI_KEY_PREFIX: "boi" });
  assert.equal(p.code, 2);
  assert.equal(
    p.err,
    'error: BOI_KEY_PREFIX: key prefix must start and end with "/": got "boi"',
  );
  const e = await run(["nodes"], { BOI_ETCD_ENDPOINTS: " , " });
  assert.equal(e.code, 2);
  assert.match(e.err, /^error: BOI_ETCD_ENDPOINTS: etcd endpoints must be/);
  // A flag given is named as the flag.
  const f = await run(["nodes", "--prefix", "x"], { BOI_KEY_PREFIX: "/ok/" });
  assert.match(f.err, /^error: --prefix: key prefix/);
});
