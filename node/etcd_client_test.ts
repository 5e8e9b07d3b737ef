import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { freePort, startEtcd } from "../tests/harness/mod.ts";
import { connectEtcd } from "./etcd_client.ts";
import { deadline } from "./etcd_errors.ts";

Deno.test("the CLI's fail-fast client with a dead member among its endpoints: every call is answered by a live one", async () => {
  await using etcd = await startEtcd();
  const dead = `http://127.0.0.1:${freePort()}`;
  const client = connectEtcd([dead, etcd.endpoint], { failFast: true });
  try {
    const failed: string[] = [];
    for (let i = 0; i < 30; i++) {
      await client.kv.range({ key: Buffer.from("/k") }, deadline(1800))
        .catch((e) => failed.push(`${i}: ${(e as Error).message}`));
    }
    assert.deepEqual(failed, []);
  } finally {
    client.close();
  }
});

Deno.test("the CLI's fail-fast client with one endpoint, dead: the call fails at once with its own error", async () => {
  const client = connectEtcd([`http://127.0.0.1:${freePort()}`], {
    failFast: true,
  });
  try {
    const t0 = performance.now();
    await assert.rejects(
      () => client.kv.range({ key: Buffer.from("/k") }, deadline(1800)),
      /ECONNREFUSED/,
    );
    assert.ok(performance.now() - t0 < 1500);
  } finally {
    client.close();
  }
});

Deno.test("the CLI's fail-fast client with every member dead: the last member's own error, not an open breaker", async () => {
  const client = connectEtcd(
    [`http://127.0.0.1:${freePort()}`, `http://127.0.0.1:${freePort()}`],
    { failFast: true },
  );
  try {
    await assert.rejects(
      () => client.kv.range({ key: Buffer.from("/k") }, deadline(1800)),
      /ECONNREFUSED/,
    );
  } finally {
    client.close();
  }
});
