import assert from "node:assert/strict";
import type { NodeEvent, SpawnEffect } from "../core/mod.ts";
import type {
  Pool,
  SpawnRequest,
  WorkerEvent,
  Workspace,
} from "../exec/contracts.ts";
import type { SpecRecord } from "../schema.ts";
import { testEnvelope } from "../test_envelope.ts";
import { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { WorkerRunner } from "./worker_runner.ts";

/** A runner over a scripted pool and a workspace that counts its calls. */
async function fixture(events: (dir: string) => WorkerEvent[]) {
  const dataDir = await Deno.makeTempDir({ prefix: "boi-wr-" });
  const pushed: NodeEvent[] = [];
  const cleaned: string[] = [];
  const logDir = `${dataDir}/logs/s1`;
  const seen: { started: boolean; dirAtSpawn: boolean | null } = {
    started: false,
    dirAtSpawn: null,
  };
  const exists = (p: string) => {
    try {
      Deno.statSync(p);
      return true;
    } catch {
      return false;
    }
  };
  const pool: Pool = {
    async *spawn(_req: SpawnRequest) {
      seen.dirAtSpawn = exists(logDir);
      for (const ev of events(logDir)) {
        await Promise.resolve();
        yield ev;
      }
    },
    kill: () => Promise.resolve(),
  };
  const workspace: Workspace = {
    prepare: () => Promise.reject(new Error("not in these tests")),
    cleanup: (req) => {
      cleaned.push(req.workdir);
      return Promise.resolve();
    },
  };
  const spec = { spec_id: "s1", env: {} } as unknown as SpecRecord;
  const runner = new WorkerRunner({
    data_dir: dataDir,
    node_id: "n1",
    pool,
    workspace,
    log: new Logger({}, "error"),
    metrics: new Metrics(),
    push: (ev) => pushed.push(ev),
    specYaml: () => "name: s1\n",
    spec: () => spec,
  });
  return {
    dataDir,
    logDir,
    runner,
    pushed,
    cleaned,
    seen,
    exists,
    [Symbol.asyncDispose]: () => Deno.remove(dataDir, { recursive: true }),
  };
}

const envelope = testEnvelope("s1.t", { state: "CLAIMED" });
const spawnEffect: SpawnEffect = {
  kind: "spawn",
  task_id: "s1.t",
  fence: 7,
  attempt: 1,
  envelope,
  workdir: "/w/s1/s1.t",
  env: {},
};

Deno.test("worker runner: the spec's log directory is made once Started is in, not before Spawn", async () => {
  await using f = await fixture(() => [
    { started: { pid: 42 } },
    { exit: { code: 0, signal: null, error: null } },
  ]);
  await f.runner.spawn(spawnEffect);
  assert.equal(f.seen.dirAtSpawn, false, "made before Spawn was sent");
  assert.ok(f.exists(f.logDir), "no log directory after the worker ran");
  assert.deepEqual(f.pushed.map((e) => e.type), [
    "worker_started",
    "worker_exit",
  ]);
  assert.deepEqual(f.cleaned, ["/w/s1/s1.t"]);
});

Deno.test("worker runner: a task that never started still has its spec's log directory (tail tells it by that)", async () => {
  await using f = await fixture(() => [
    { exit: { code: null, signal: null, error: "spawn failed: no such cwd" } },
  ]);
  await f.runner.spawn(spawnEffect);
  assert.ok(f.exists(f.logDir));
  const exit = f.pushed.at(-1)!;
  assert.equal(exit.type, "worker_exit");
});
