import assert from "node:assert/strict";
import type { NodeEvent, SpawnEffect } from "../core/mod.ts";
import type {
  KillRequest,
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

/**
 * A runner over a scripted pool (an Error in the script breaks the stream
 * there) and a workspace that counts its calls; `order` is what happened.
 */
async function fixture(
  events: (dir: string) => (WorkerEvent | Error)[],
  kill: (req: KillRequest) => Promise<void> = () => Promise.resolve(),
) {
  const dataDir = await Deno.makeTempDir({ prefix: "boi-wr-" });
  const pushed: NodeEvent[] = [];
  const cleaned: string[] = [];
  const order: string[] = [];
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
        if (ev instanceof Error) throw ev;
        yield ev;
      }
    },
    kill: (req) => {
      order.push(`kill ${req.grace_ms}`);
      return kill(req);
    },
  };
  const workspace: Workspace = {
    prepare: () => Promise.reject(new Error("not in these tests")),
    cleanup: (req) => {
      order.push("cleanup");
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
    push: (ev) => {
      order.push(ev.type);
      pushed.push(ev);
    },
    specYaml: () => "name: s1\n",
    spec: () => spec,
  });
  return {
    dataDir,
    logDir,
    runner,
    pushed,
    cleaned,
    order,
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

Deno.test("worker runner: a log that cannot be written does not end the worker: its exit is the command's own", async () => {
  await using f = await fixture(() => [
    { started: { pid: 42 } },
    { stdout: new TextEncoder().encode("out\n") },
    { stderr: new TextEncoder().encode("err\n") },
    { exit: { code: 3, signal: null, error: null } },
  ]);
  // `logs` a plain file: every mkdir and open under it fails (root or not).
  await Deno.writeTextFile(`${f.dataDir}/logs`, "not a directory");
  await f.runner.spawn(spawnEffect);
  const exit = f.pushed.at(-1)!;
  assert.ok(exit.type === "worker_exit", JSON.stringify(exit));
  assert.deepEqual(
    { code: exit.code, lost: exit.lost },
    { code: 3, lost: false },
    JSON.stringify(exit),
  );
  assert.deepEqual(f.order, ["worker_started", "worker_exit", "cleanup"]);
});

Deno.test("worker runner: a Spawn stream that breaks without an exit kills its worker before the attempt counts as lost and its workspace goes", async () => {
  let fails = 2;
  await using f = await fixture(
    () => [{ started: { pid: 42 } }, new Error("mux stream ended")],
    () =>
      fails-- > 0 ? Promise.reject(new Error("pool busy")) : Promise.resolve(),
  );
  await f.runner.spawn(spawnEffect);
  // The first two Kills fail; the third is taken, then the exit, then Cleanup.
  assert.deepEqual(f.order, [
    "worker_started",
    "kill 0",
    "kill 0",
    "kill 0",
    "worker_exit",
    "cleanup",
  ]);
  const exit = f.pushed.at(-1)!;
  assert.ok(exit.type === "worker_exit" && exit.lost, JSON.stringify(exit));
});

Deno.test("worker runner: a Kill the pool did not take goes back to the core as kill_failed", async () => {
  await using f = await fixture(
    () => [],
    () => Promise.reject(new Error("14 UNAVAILABLE")),
  );
  f.runner.kill({
    kind: "kill",
    task_id: "s1.t",
    fence: 7,
    grace_ms: 0,
    reason: "claim lost",
  });
  const deadline = Date.now() + 5000;
  while (!f.pushed.some((e) => e.type === "kill_failed")) {
    assert.ok(Date.now() < deadline, `no kill_failed: saw ${f.order}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(f.pushed, [{
    type: "kill_failed",
    at: (f.pushed[0] as { at: number }).at,
    task_id: "s1.t",
    fence: 7,
  }]);
});

Deno.test("worker runner: at stop, a Kill the pool refuses (restarting) is sent again until it is taken, before the lease may go", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "boi-wr-" });
  try {
    const killed = Promise.withResolvers<void>();
    let kills = 0;
    const pool: Pool = {
      async *spawn() {
        yield { started: { pid: 42 } };
        await killed.promise; // runs until a Kill is taken
        yield { exit: { code: null, signal: "SIGTERM", error: null } };
      },
      kill: () => {
        if (++kills < 3) return Promise.reject(new Error("pool restarting"));
        killed.resolve();
        return Promise.resolve();
      },
    };
    const warned: string[] = [];
    const log = new Logger({}, "error");
    log.warn = (msg: string) => void warned.push(msg);
    const runner = new WorkerRunner({
      data_dir: dataDir,
      node_id: "n1",
      pool,
      workspace: {
        prepare: () => Promise.reject(new Error("not in this test")),
        cleanup: () => Promise.resolve(),
      },
      log,
      metrics: new Metrics(),
      push: () => {},
      specYaml: () => "name: s1\n",
      spec: () => ({ spec_id: "s1", env: {} }) as unknown as SpecRecord,
    });
    const running = runner.spawn(spawnEffect);
    await new Promise((r) => setTimeout(r, 10)); // started
    const t0 = performance.now();
    await runner.stopAll([{ task_id: "s1.t", fence: 7 }]);
    assert.equal(kills, 3, "the refused Kills were not sent again");
    assert.ok(performance.now() - t0 < 2900, "waited for the deadline");
    await running;
    assert.deepEqual(warned.filter((m) => m.startsWith("stopping")), []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
