/** SPEC §11 defaults from the environment: a bad value names the variable it came from, not the flag nobody typed. */
import { runCli } from "./test_util.ts";
import assert from "node:assert/strict";

Deno.test("cli env: BOI_KEY_PREFIX and BOI_ETCD_ENDPOINTS are named when they are the bad value", async () => {
  const p = await runCli(["nodes"], { BOI_KEY_PREFIX: "boi" });
  assert.equal(p.code, 2);
  assert.equal(
    p.err.trim(),
    'error: BOI_KEY_PREFIX: key prefix must start and end with "/": got "boi"',
  );
  const e = await runCli(["nodes"], { BOI_ETCD_ENDPOINTS: " , " });
  assert.equal(e.code, 2);
  assert.match(e.err, /^error: BOI_ETCD_ENDPOINTS: etcd endpoints must be/);
  // A flag given is named as the flag.
  const f = await runCli(["nodes", "--prefix", "x"], {
    BOI_KEY_PREFIX: "/ok/",
  });
  assert.match(f.err, /^error: --prefix: key prefix/);
});
