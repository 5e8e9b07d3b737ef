/**
 * The generated modules must not install another Long class into protobufjs
 * (proto/long.ts): the etcd client in the same process uses it too.
 */
import assert from "node:assert/strict";
import _m0 from "protobufjs/minimal.js";

Deno.test("proto/gen leaves protobufjs's Long class as it found it", async () => {
  const original = _m0.util.Long;
  assert.ok(original, "protobufjs has a Long class of its own");
  for (
    const k of ["common", "workspace", "pool", "router", "provisioner", "hooks"]
  ) {
    await import(`./gen/boi/${k}/v1/${k}.ts`);
    assert.equal(
      _m0.util.Long,
      original,
      `importing proto/gen/boi/${k} swapped it`,
    );
  }
  // and 64-bit fields still decode to numbers
  const { Started } = await import("./gen/boi/pool/v1/pool.ts");
  const pid = 2 ** 40 + 3;
  assert.equal(Started.decode(Started.encode({ pid }).finish()).pid, pid);
});
