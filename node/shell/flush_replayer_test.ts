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

/** node-a's replayer over `flush` and `client`; what it tells the core goes to `pushed`. */
function replayerOf(
  flush: PendingFlush,
  client: ReturnType<typeof connectEtcd>,
  log: Logger,
  pushed: NodeEvent[],
): FlushReplayer {
  return new FlushReplayer({
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
}

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
    const replayer = replayerOf(flush, client, log, pushed);
    await replayer.replay();
    assert.deepEqual(pushed.map((e) => e.type), ["flush_resolved"]);
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flush replayer: an entry etcd refuses (its write too large) does not hold up the entries behind it", async () => {
  // Requests over 2 KiB are refused: the first entry's result text (cut to
  // MAX_ERROR_CHARS, 2,048) makes its finish larger than that, an error that
  // is not an outage.
  await using etcd = await startEtcd({
    extraArgs: ["--max-request-bytes=2048"],
  });
  const client = connectEtcd([etcd.endpoint]);
  const dir = await Deno.makeTempDir({ prefix: "boi-replay-" });
  try {
    const log = new Logger({}, "error");
    const flush = new PendingFlush(`${dir}/node-a.jsonl`, log, 1_000_000);
    await flush.load();
    for (const [id, error] of [["s1.big", "x".repeat(9000)], ["s1.ok", null]]) {
      const lease = await client.lease(60, { autoKeepAlive: false }).grant();
      await client.put(keys.claim(id!)).value("{}").lease(lease).exec();
      const fence = Number(
        (await client.get(keys.claim(id!)).exec()).kvs[0].create_revision,
      );
      await client.put(keys.task(id!)).value(JSON.stringify(testEnvelope(
        id!,
        { state: "RUNNING", fence, claimant_node_id: "node-a", attempts: 1 },
      )));
      await flush.append({
        task_id: id!,
        fence,
        attempt: 1,
        code: error === null ? 0 : 1,
        signal: null,
        error,
        lost: false,
        started_at: 1,
        finished_at: 2,
        parked_at: 3,
      });
    }
    const pushed: NodeEvent[] = [];
    const replayer = replayerOf(flush, client, log, pushed);
    await replayer.replay();
    const done = JSON.parse(
      (await client.get(keys.task("s1.ok")).exec()).kvs[0].value.toString(),
    );
    assert.equal(done.state, "DONE", "the entry behind the refused one waited");
    assert.deepEqual(flush.entries.map((e) => e.task_id), ["s1.big"]);
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});
