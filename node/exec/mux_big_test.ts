/**
 * A message bigger than one call may carry fails that call alone, over the
 * Mux stream as over plain calls: before, a plugin's 5 MiB stdout item broke
 * the stream (grpc-js refused the batch) and failed every call on it, so
 * every running task of the node was killed. A message at the limit passes.
 */
import assert from "node:assert/strict";
import { CODECS } from "./grpc_codec.ts";
import { MAX_MESSAGE_BYTES } from "./mux_wire.ts";
import { spawnRequest } from "./test_spawn_request.ts";
import { withPlugin } from "../../plugins/test_util.ts";

Deno.test("mux: an item over the message limit fails its own Spawn RESOURCE_EXHAUSTED; the call beside it and one at the limit go through", async () => {
  await withPlugin("testdata/big_item_pool.ts", "pool", {}, async (conn, p) => {
    assert.equal(conn.transport, "mux");
    const run = async (task_id: string) => {
      const kinds: string[] = [];
      let bytes = 0;
      try {
        for await (
          const ev of conn.stream(CODECS.pool.spawn, spawnRequest({ task_id }))
        ) {
          kinds.push(Object.keys(ev)[0]);
          if ("stdout" in ev) bytes += ev.stdout.length;
        }
        return { ok: true, kinds, bytes, error: "" };
      } catch (e) {
        return { ok: false, kinds, bytes, error: (e as Error).message };
      }
    };
    const slow = run("slow");
    await new Promise((r) => setTimeout(r, 200));
    const [over, at] = await Promise.all([
      run(`big-${MAX_MESSAGE_BYTES + 1}`),
      run(`big-${MAX_MESSAGE_BYTES - 8}`),
    ]);
    assert.equal(over.ok, false, JSON.stringify(over));
    assert.match(over.error, /RESOURCE_EXHAUSTED/);
    assert.match(over.error, /over the 4194304 bytes one call may carry/);
    assert.equal(at.ok, true, at.error);
    assert.equal(at.bytes, MAX_MESSAGE_BYTES - 8);
    const s = await slow;
    assert.equal(s.ok, true, `the call beside it: ${s.error}`);
    assert.deepEqual(s.kinds, ["started", "stdout", "exit"]);
    // The refused call's generator was closed, not left suspended.
    const closed = `big-${MAX_MESSAGE_BYTES + 1} closed`;
    await p.stderr.waitFor(closed, (l) => l.includes(closed), 5_000);
  });
});
