/**
 * GrpcHooks: calls open at once reach a 1.0 plugin (plain RPCs, no Mux
 * stream) one at a time, in the order sent.
 */
import assert from "node:assert/strict";
import { PluginSupervisor } from "../plugins/supervisor.ts";
import { GrpcHooks } from "./grpc_hooks.ts";
import { pluginArgv, tempDir } from "../../plugins/test_util.ts";

Deno.test("GrpcHooks over plain RPCs (1.0 plugin): concurrent OnEvent calls go one at a time, in order", async () => {
  const dir = await tempDir("boi-hooks-");
  const record = `${dir}/calls.jsonl`;
  const sup = new PluginSupervisor({
    plugin: {
      name: "hooks",
      kind: "hooks",
      argv: pluginArgv("mock.ts"),
      env: {
        BOI_MOCK_PROTO_MINOR: "0",
        BOI_MOCK_SLOW_ACK_MS: "100",
        BOI_MOCK_RECORD: record,
      },
    },
    node_id: "n1",
    data_dir: dir,
    ready_timeout_ms: 10_000,
    log: { log() {} },
  });
  try {
    assert.equal((await sup.start()).state, "ready");
    assert.equal((await sup.connection()).transport, "unary");
    const hooks = new GrpcHooks({ connection: () => sup.connection() });
    const acks = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((seq) =>
        hooks.onEvent({
          seq,
          emitter_node_id: "n1",
          kind: "task.completed",
          ts: seq,
          payload_json: "{}",
          dedup_key: `k${seq}`,
          tier: "audit",
        })
      ),
    );
    assert.deepEqual(acks.map((a) => a.acked_seq), [1, 2, 3, 4, 5, 6]);
    const calls = (await Deno.readTextFile(record)).trim().split("\n")
      .map((l) => JSON.parse(l)).filter((c) => c.rpc === "OnEvent");
    assert.deepEqual(
      calls.map((c) => c.corr_id.split(".")[1]),
      ["1", "2", "3", "4", "5", "6"],
    );
    // Each call reached the plugin only once the one before was answered.
    for (let i = 1; i < calls.length; i++) {
      const gap = calls[i].ts - calls[i - 1].ts;
      assert.ok(gap >= 90, `call ${i + 1} came ${gap} ms after call ${i}`);
    }
  } finally {
    await sup.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
