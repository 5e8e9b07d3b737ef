/**
 * The workspace `spec_cache` end to end: a real node whose workspace plugin
 * (plugins/test_spec_recorder.ts, an SDK plugin that records what its
 * `prepare` handler was handed) is SIGKILLed in the middle of a spec. The
 * supervisor's new incarnation gets a new connection, so core sends the YAML
 * in full again rather than a digest the new process cannot know: every task
 * ends DONE, every Prepare's handler saw the spec's whole YAML, and no miss
 * was needed.
 */
import assert from "node:assert/strict";
import { makeTempDir, notYet, waitFor } from "../harness/mod.ts";
import { dispatch, startCluster, waitTerminal } from "./cluster.ts";
import {
  pluginArgv,
  pluginsFile,
  readyIncarnation,
  spawned,
  waitPlugin,
} from "./plugin_util.ts";
import { specDigest } from "../../node/exec/spec_cache_wire.ts";

interface Seen {
  spec_id: string;
  task_id: string;
  length: number;
  digest: string;
}

async function seen(path: string): Promise<Seen[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

Deno.test("spec_cache: SIGKILL the workspace plugin mid-spec: every task DONE, every prepare saw the whole YAML, no miss", async () => {
  const dir = await makeTempDir("boi-speccache-e2e-");
  const record = `${dir}/seen.jsonl`;
  const file = await pluginsFile({
    workspace: {
      argv: pluginArgv("test_spec_recorder.ts"),
      env: { BOI_RECORDER_FILE: record },
    },
  });
  await using c = await startCluster([{
    nodeId: "node-a",
    workersMax: 2,
    env: { BOI_PLUGINS: file },
  }]);
  const a = c.node("node-a");
  const rec = await waitPlugin(
    c.etcd,
    "node-a",
    "workspace",
    (r) => r.state === "ready",
  );
  assert.ok(rec.capabilities.includes("spec_cache"), rec.capabilities.join());
  const N = 24;
  // Padded so the YAML is worth caching (~20 KB).
  const yaml = `name: cached\ntasks:\n` +
    Array.from(
      { length: N },
      (_, i) =>
        `  - id: t${i}\n    run: sleep 0.2\n    env: { PAD: "${
          "x".repeat(800)
        }" }\n`,
    ).join("");
  const { spec_id } = await dispatch(c, yaml);

  await waitFor("6 prepares recorded", async () => {
    const n = (await seen(record)).length;
    return n >= 6 ? n : notYet(n);
  }, { timeoutMs: 20_000, intervalMs: 20 });
  const ws = spawned(a, "workspace")!;
  Deno.kill(ws.pid, "SIGKILL");
  await readyIncarnation(a, "workspace", ws.incarnation);

  const done = await waitTerminal(c, spec_id, 60_000);
  assert.deepEqual(
    done.filter((e) => e.state !== "DONE").map((e) =>
      `${e.task_id}: ${e.state} ${e.last_error}`
    ),
    [],
  );
  const all = (await seen(record)).filter((s) => s.spec_id === spec_id);
  const tasks = new Set(all.map((s) => s.task_id));
  assert.equal(tasks.size, N, "every task was prepared");
  for (const s of all) {
    assert.deepEqual(
      { length: s.length, digest: s.digest },
      { length: yaml.length, digest: specDigest(yaml) },
      `${s.task_id}: the handler got another spec_yaml`,
    );
  }
  console.log(
    `${all.length} prepares of ${N} tasks (${yaml.length}-byte spec), plugin restarted once`,
  );
  // The new incarnation was never sent a digest it could not know.
  const misses = a.logs().filter((l) =>
    JSON.stringify(l).includes("spec_cache_miss")
  );
  assert.deepEqual(misses, []);
});
