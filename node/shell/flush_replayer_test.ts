import assert from "node:assert/strict";
import { startEtcd } from "../../tests/harness/mod.ts";
import type { NodeEvent } from "../core/mod.ts";
import { cluster, keys } from "../core/handlers_test_util.ts";
import { connectEtcd } from "../etcd_client.ts";
import { testEnvelope } from "../test_envelope.ts";
import { EtcdHealth } from "./etcd_health.ts";
import { FlushReplayer } from "./flush_replayer.ts";
import { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { PendingFlush } from "./pending_flush.ts";

Deno.test("flush replayer: a settled entry that cannot be removed from the file (a full disk) is still resolved for the core", async () => {
  await using etcd = await startEtcd();
  const client = connectEtcd([etcd.endpoint]);
  const dir = await Deno.makeTempDir({ prefix: "boi-replay-" });
  try {
    // The finish committed; only its answer was lost.
    await client.put(keys.task("s1.t")).value(JSON.stringify(testEnvelope(
      "s1.t",
      { state: "DONE", fence: 40, ran_on: "node-a", attempts: 1 },
    )));
    const log = new Logger({}, "error");
    const path = `${dir}/node-a.jsonl`;
    const flush = new PendingFlush(path, log, 1_000_000, () => {});
    await flush.load();
    await flush.append({
      task_id: "s1.t",
      fence: 40,
      attempt: 1,
      code: 0,
      signal: null,
      error: null,
      lost: false,
      started_at: 1,
      finished_at: 2,
      parked_at: 3,
    });
    await Deno.mkdir(`${path}.tmp`); // every rewrite of the file fails
    const pushed: NodeEvent[] = [];
    const replayer = new FlushReplayer({
      flush,
      client,
      keys,
      config: cluster("node-a", ["node-a"]).config,
      log,
      health: new EtcdHealth(log, new Metrics(), 1000, () => {}),
      push: (ev) => pushed.push(ev),
      execute: () => {},
      stopping: () => false,
    });
    await replayer.replay();
    assert.deepEqual(pushed.map((e) => e.type), ["flush_resolved"]);
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});
