/**
 * hooks_jsonl under the supervisor: JSON lines in a file, POSTs to a local
 * webhook, acks only after both, and no duplicate lines for a replay — even
 * across a plugin restart.
 */
import assert from "node:assert/strict";
import { PluginSupervisor } from "../node/plugins/supervisor.ts";
import { GrpcHooks } from "../node/exec/grpc_hooks.ts";
import { PluginCallError } from "../node/exec/grpc_client.ts";
import type { HookEvent } from "../node/plugins/contracts.ts";
import { pluginArgv, tempDir } from "./test_util.ts";

const event = (seq: number): HookEvent => ({
  seq,
  emitter_node_id: "n1",
  kind: "task.completed",
  ts: 1_700_000_000_000 + seq,
  payload_json: JSON.stringify({ task_id: `s.t${seq}` }),
  dedup_key: `key-${seq}`,
  tier: "audit",
});

Deno.test("hooks_jsonl: file and webhook, ack after both, replays deduplicated", async () => {
  const dir = await tempDir("boi-hooks-");
  const posts: Record<string, unknown>[] = [];
  let failing = false;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const body = await req.json();
      if (failing) return new Response("down", { status: 503 });
      posts.push({ ...body, key: req.headers.get("idempotency-key") });
      return new Response("ok");
    },
  );
  const hostPort = `127.0.0.1:${server.addr.port}`;
  const file = `${dir}/events.jsonl`;
  const sup = new PluginSupervisor({
    plugin: {
      name: "hooks",
      kind: "hooks",
      argv: pluginArgv("hooks_jsonl.ts", [], { net: [hostPort] }),
      env: {
        BOI_HOOKS_FILE: file,
        BOI_HOOKS_WEBHOOK_URL: `http://${hostPort}/events`,
      },
    },
    node_id: "n1",
    data_dir: dir,
    ready_timeout_ms: 5000,
    log: { log() {} },
  });
  const lines = async () =>
    (await Deno.readTextFile(file)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
  try {
    assert.equal((await sup.start()).state, "ready");
    const hooks = new GrpcHooks({ connection: () => sup.connection() });

    assert.deepEqual(await hooks.onEvent(event(1)), { acked_seq: 1 });
    assert.deepEqual(await hooks.onEvent(event(2)), { acked_seq: 2 });
    assert.deepEqual(await hooks.onEvent(event(1)), { acked_seq: 1 });
    assert.deepEqual((await lines()).map((l) => l.seq), [1, 2]);
    assert.deepEqual((await lines())[0].payload, { task_id: "s.t1" });
    assert.deepEqual(posts.map((p) => p.key), ["key-1", "key-2"]);

    // Webhook down: no ack, so core redelivers; the line is written once.
    failing = true;
    await assert.rejects(
      hooks.onEvent(event(3)),
      (e) =>
        e instanceof PluginCallError && /webhook answered 503/.test(e.details),
    );
    failing = false;
    assert.deepEqual(await hooks.onEvent(event(3)), { acked_seq: 3 });
    assert.deepEqual((await lines()).map((l) => l.seq), [1, 2, 3]);
    assert.deepEqual(posts.map((p) => p.key), ["key-1", "key-2", "key-3"]);

    // A new incarnation remembers what the file already holds.
    assert.equal((await sup.restart()).state, "ready");
    assert.deepEqual(await hooks.onEvent(event(2)), { acked_seq: 2 });
    assert.deepEqual((await lines()).map((l) => l.seq), [1, 2, 3]);
  } finally {
    await sup.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
