/**
 * LocalPool's spawner over its life: what its death, the pool's end, a
 * SIGTERM meant for the pool or a missing perl do to tasks, and the state
 * file of live groups it keeps for reaping after a crash.
 */
import assert from "node:assert/strict";
import { LocalPool } from "./local_pool.ts";
import { spawnRequest } from "./test_spawn_request.ts";
import {
  processGroupAlive,
  processTable,
} from "../../tests/harness/process.ts";
import { notYet, waitFor } from "../../tests/harness/wait.ts";
import { exitOf, follow, run, stdout } from "./test_worker_events.ts";

Deno.test("LocalPool: the spawner ignores SIGTERM meant for the pool; tasks keep running", async () => {
  await using pool = new LocalPool();
  const spawner = pool.ready();
  const w = follow(pool.spawn(spawnRequest({ shell: "sleep 1; echo ok" })));
  await w.pid;
  Deno.kill(spawner.pid, "SIGTERM");
  Deno.kill(spawner.pid, "SIGINT");
  const evs = await w.events;
  assert.equal(stdout(evs), "ok\n");
  assert.deepEqual(exitOf(evs), { code: 0, signal: null, error: null });
  assert.equal(spawner.dead, false);
});

Deno.test("LocalPool: a dead spawner's tasks end as lost, their groups are reaped, the next task runs", async () => {
  const deaths: string[] = [];
  await using pool = new LocalPool({ onSpawnerDeath: (r) => deaths.push(r) });
  const spawner = pool.ready();
  const req = spawnRequest({ shell: "sleep 300 & echo $!; wait" });
  const w = follow(pool.spawn(req));
  const pgid = await w.pid;
  await waitFor(
    "the grandchild running",
    async () =>
      (await processTable()).some((r) => r.pgrp === pgid && r.pid !== pgid),
  );
  Deno.kill(spawner.pid, "SIGKILL");
  const evs = await w.events;
  assert.deepEqual(exitOf(evs), {
    code: null,
    signal: null,
    error: "worker lost: the pool's spawner died (killed by SIGKILL)",
  });
  assert.deepEqual(deaths, ["killed by SIGKILL"]);
  await waitFor(
    `group ${pgid} reaped by the next spawner`,
    async () => !(await processGroupAlive(pgid)),
  );
  assert.deepEqual(exitOf(await run(pool, { shell: "exit 4" })).code, 4);
  assert.notEqual(pool.ready().pid, spawner.pid);
});

Deno.test("LocalPool: closing the pool (the spawner's stdin) kills every running group", async () => {
  const pool = new LocalPool();
  const w = follow(pool.spawn(spawnRequest({ shell: "sleep 300 & wait" })));
  const pgid = await w.pid;
  await pool.close();
  assert.match(exitOf(await w.events).error ?? "", /^worker lost: /);
  await waitFor(
    `group ${pgid} gone`,
    async () => !(await processGroupAlive(pgid)),
  );
});

Deno.test("LocalPool: without perl, one warning and every task a spawn failure", async () => {
  const warnings: string[] = [];
  await using pool = new LocalPool({
    perl: "/nonexistent/perl",
    warn: (m) => warnings.push(m),
  });
  for (let i = 0; i < 2; i++) {
    const exit = exitOf(await run(pool, { argv: ["true"] }));
    assert.equal(exit.code, null);
    assert.match(
      exit.error ?? "",
      /^spawn failed: the pool's spawner cannot start/,
    );
  }
  // A Kill racing such a Spawn finds nothing to signal and changes nothing.
  const req = spawnRequest({ argv: ["true"] });
  const w = follow(pool.spawn(req));
  await pool.kill({ ...req, grace_ms: 0 });
  assert.match(exitOf(await w.events).error ?? "", /^spawn failed: /);
  assert.equal(warnings.length, 1);
  assert.ok(!warnings[0].includes("\n"));
});

Deno.test("LocalPool: the spawner keeps the live groups in the state file, and removes it when closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-lp-" });
  const file = `${dir}/groups.json`;
  const read = async () => {
    try {
      const state = JSON.parse(await Deno.readTextFile(file)) as {
        boot: string;
        g: [number, number][];
      };
      assert.equal(state.boot, await bootId());
      return state.g.map(([pgid, start]) => {
        assert.ok(start > 0, `no start time for ${pgid}`);
        return pgid;
      });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  };
  try {
    const pool = new LocalPool({ state_file: file });
    const reqs = [0, 1].map(() => spawnRequest({ argv: ["sleep", "300"] }));
    const ws = reqs.map((r) => follow(pool.spawn(r)));
    const pids = await Promise.all(ws.map((w) => w.pid));
    await waitFor("both groups recorded", async () => {
      const g = await read();
      return g?.sort().join() === [...pids].sort().join() ? true : notYet(g);
    });
    await pool.kill({ ...reqs[0], grace_ms: 0 });
    await ws[0].events;
    await waitFor("the exited group dropped", async () => {
      const g = await read();
      return g?.join() === String(pids[1]) ? true : notYet(g);
    });
    await pool.close();
    assert.match(exitOf(await ws[1].events).error ?? "", /^worker lost: /);
    assert.equal(await read(), null, "no file: nothing left to reap");
    // SIGKILLed by the spawner as it ended; its reaper (init) may lag.
    await waitFor(
      `group ${pids[1]} gone`,
      async () => (await processGroupAlive(pids[1])) ? notYet("alive") : true,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalPool: a starting spawner SIGKILLs the groups the state file names (a crashed pool's), and says which", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-lp-" });
  const file = `${dir}/groups.json`;
  try {
    // A "crashed pool's" worker: a group of its own, still running.
    await using other = new LocalPool();
    const w = follow(
      other.spawn(spawnRequest({ shell: "sleep 300 & sleep 300" })),
    );
    const pgid = await w.pid;
    // Another group whose leader started later than the file says: its id
    // was reused, the group is someone else's now.
    const reused = follow(
      other.spawn(spawnRequest({ argv: ["sleep", "300"] })),
    );
    const stranger = await reused.pid;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        boot: await bootId(),
        g: [
          [pgid, await startTime(pgid)],
          [999_999_999, 1],
          [stranger, (await startTime(stranger)) - 1],
        ],
      }),
    );
    const reaped: number[][] = [];
    await using pool = new LocalPool({
      state_file: file,
      onReaped: (p) => reaped.push(p),
    });
    pool.ready();
    assert.equal(exitOf(await w.events).signal, "SIGKILL");
    await waitFor(
      "the reap reported",
      () => reaped.length > 0 ? true : notYet(reaped),
    );
    assert.deepEqual(reaped, [[pgid]], "only the group that was there");
    assert.ok(await processGroupAlive(stranger), "a reused id was killed");
    await waitFor(
      `group ${pgid} gone`,
      async () => (await processGroupAlive(pgid)) ? notYet("alive") : true,
    );
    // The file now holds this pool's groups: none yet.
    assert.equal((await Deno.readTextFile(file)).trim(), "");
    assert.equal(exitOf(await run(pool, { argv: ["true"] })).code, 0);
    await waitFor("the file rewritten", async () => {
      const t = (await Deno.readTextFile(file)).trim();
      return t === `{"boot":"${await bootId()}","g":[]}` ? true : notYet(t);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalPool: a state file from before the last boot is not reaped from", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-lp-" });
  const file = `${dir}/groups.json`;
  try {
    await using other = new LocalPool();
    // Closed with the scope: its spawner then SIGKILLs this group.
    const w = follow(other.spawn(spawnRequest({ argv: ["sleep", "300"] })));
    const pgid = await w.pid;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        boot: "another-boot",
        g: [[pgid, await startTime(pgid)]],
      }),
    );
    const reaped: number[][] = [];
    await using pool = new LocalPool({
      state_file: file,
      onReaped: (p) => reaped.push(p),
    });
    assert.equal(exitOf(await run(pool, { argv: ["true"] })).code, 0);
    assert.deepEqual(reaped, []);
    assert.ok(
      await processGroupAlive(pgid),
      "a group of another boot's file was killed",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function bootId(): Promise<string> {
  return (await Deno.readTextFile("/proc/sys/kernel/random/boot_id")).trim();
}

/** /proc/<pid>/stat field 22, the process's start time in clock ticks. */
async function startTime(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
}
