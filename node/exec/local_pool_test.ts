/**
 * LocalPool in-process, on its perl spawner: pid == pgid == sid, the whole
 * tree killed, the task's own exit status, environment and cwd, output byte
 * for byte, and what the spawner's death or the pool's end does to tasks.
 */
import assert from "node:assert/strict";
import { LocalPool } from "./local_pool.ts";
import type { SpawnRequest, WorkerEvent } from "./contracts.ts";
import { spawnRequest } from "./test_spawn_request.ts";
import {
  processAlive,
  processGroupAlive,
  processTable,
} from "../../tests/harness/process.ts";
import { notYet, waitFor } from "../../tests/harness/wait.ts";

/** Follows a Spawn: the pid as soon as it starts, all events at the end. */
function follow(it: AsyncIterable<WorkerEvent>) {
  let started!: (pid: number) => void;
  const pid = new Promise<number>((r) => started = r);
  const events = (async () => {
    const out: WorkerEvent[] = [];
    for await (const ev of it) {
      if ("started" in ev) started(ev.started.pid);
      out.push(ev);
    }
    return out;
  })();
  return { pid, events };
}

const dec = new TextDecoder();
const stdout = (evs: WorkerEvent[]) =>
  evs.map((e) => "stdout" in e ? dec.decode(e.stdout) : "").join("");
const stderr = (evs: WorkerEvent[]) =>
  evs.map((e) => "stderr" in e ? dec.decode(e.stderr) : "").join("");
const exitOf = (evs: WorkerEvent[]) => {
  const last = evs.at(-1)!;
  assert.ok("exit" in last, "the stream ends with exit");
  return last.exit;
};

async function run(pool: LocalPool, over: Partial<SpawnRequest>) {
  return await follow(pool.spawn(spawnRequest(over))).events;
}

Deno.test(`LocalPool: the started pid is its own session and process group`, async () => {
  await using pool = new LocalPool();
  const evs = await run(pool, {
    argv: ["sh", "-c", "cat /proc/$$/stat"],
  });
  const started = evs.find((e) => "started" in e);
  assert.ok(started && "started" in started);
  const f = stdout(evs).slice(stdout(evs).lastIndexOf(")") + 2).split(" ");
  const pid = started.started.pid;
  assert.deepEqual(
    { pgrp: Number(f[2]), sid: Number(f[3]) },
    { pgrp: pid, sid: pid },
  );
  assert.deepEqual(exitOf(evs), { code: 0, signal: null, error: null });
});

Deno.test(`LocalPool: exit codes and signals are the task's own, argv and shell`, async () => {
  await using pool = new LocalPool();
  const cases: [Partial<SpawnRequest>, number | null, string | null][] = [
    [{ argv: ["true"] }, 0, null],
    [{ argv: ["false"] }, 1, null],
    [{ argv: ["sh", "-c", "exit 3"] }, 3, null],
    [{ shell: "exit 3" }, 3, null],
    [{ shell: "exit 127" }, 127, null], // the task's own 127 is no spawn failure
    [{ shell: "kill -TERM $$" }, null, "SIGTERM"],
    [{ shell: "kill -KILL $$" }, null, "SIGKILL"],
    // the spawner ignores INT, TERM, HUP and PIPE; its tasks must not
    [{ shell: "kill -INT $$" }, null, "SIGINT"],
    [{ shell: "kill -HUP $$" }, null, "SIGHUP"],
    [{ shell: "kill -PIPE $$" }, null, "SIGPIPE"],
    [{ argv: ["sh", "-c", 'kill -TERM "$$"; sleep 5'] }, null, "SIGTERM"],
  ];
  for (const [over, code, signal] of cases) {
    const evs = await run(pool, over);
    assert.deepEqual(
      exitOf(evs),
      { code, signal, error: null },
      JSON.stringify(over),
    );
  }
});

Deno.test(`LocalPool: stdout and stderr streamed, cwd and argv as given`, async () => {
  await using pool = new LocalPool();
  const dir = await Deno.makeTempDir({ prefix: "boi-lp-" });
  try {
    const evs = await run(pool, {
      argv: ["sh", "-c", 'pwd; echo "$1|$2" >&2', "sh", "-x", "a b"],
      workdir: dir,
    });
    assert.equal(stdout(evs), `${await Deno.realPath(dir)}\n`);
    assert.equal(stderr(evs), "-x|a b\n");
    // An argv[0] that looks like an option is still the program.
    const dash = await run(pool, { argv: ["-nosuch-prog"] });
    assert.match(exitOf(dash).error ?? "", /^spawn failed: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(`LocalPool: a program that cannot run is a spawn failure`, async () => {
  await using pool = new LocalPool();
  for (const argv of [["boi-no-such-program"], ["/etc/passwd"]]) {
    const exit = exitOf(await run(pool, { argv }));
    assert.equal(exit.code, null);
    assert.equal(exit.signal, null);
    assert.match(exit.error ?? "", /^spawn failed: /, argv[0]);
  }
  const exit = exitOf(
    await run(pool, { argv: ["true"], workdir: "/nonexistent/boi" }),
  );
  assert.match(exit.error ?? "", /^spawn failed: .*true'.*cwd/);
});

Deno.test(`LocalPool: Kill takes the leader and its background grandchild`, async () => {
  await using pool = new LocalPool();
  for (const grace_ms of [0, 5000]) {
    const req = spawnRequest({ shell: "sleep 300 & echo $!; wait" });
    const w = follow(pool.spawn(req));
    const pgid = await w.pid;
    let grandchild = 0;
    await waitFor("the grandchild running", async () => {
      const rows = await processTable();
      grandchild = rows.find((r) => r.pgrp === pgid && r.pid !== pgid)?.pid ??
        0;
      return grandchild !== 0;
    });
    await pool.kill({ ...req, grace_ms });
    const evs = await w.events;
    assert.deepEqual(exitOf(evs), {
      code: null,
      signal: grace_ms ? "SIGTERM" : "SIGKILL",
      error: null,
    });
    assert.equal(Number(stdout(evs).trim()), grandchild);
    assert.equal(await processAlive(grandchild), false, "grandchild gone");
    assert.equal(await processGroupAlive(pgid), false, "group gone");
  }
});

Deno.test(`LocalPool: the timeout kills the whole tree`, async () => {
  await using pool = new LocalPool();
  const w = follow(
    pool.spawn(spawnRequest({ shell: "sleep 300 & wait", timeout_ms: 300 })),
  );
  const pgid = await w.pid;
  assert.deepEqual(exitOf(await w.events), {
    code: null,
    signal: "SIGKILL",
    error: "timeout after 300ms",
  });
  assert.equal(await processGroupAlive(pgid), false);
});

Deno.test(`LocalPool: a Kill right at the start still kills`, async () => {
  await using pool = new LocalPool();
  // Before the pid is known (the spawner has not read the Spawn yet) …
  const first = spawnRequest({ argv: ["sleep", "300"] });
  const w1 = follow(pool.spawn(first));
  await pool.kill({ ...first, grace_ms: 0 });
  assert.equal(exitOf(await w1.events).signal, "SIGKILL");
  // … and as soon as it is.
  for (let i = 0; i < 20; i++) {
    const req = spawnRequest({ argv: ["sleep", "300"] });
    const w = follow(pool.spawn(req));
    await w.pid;
    await pool.kill({ ...req, grace_ms: i % 2 ? 5000 : 0 });
    const exit = exitOf(await w.events);
    assert.equal(exit.signal, i % 2 ? "SIGTERM" : "SIGKILL", `run ${i}`);
  }
});

Deno.test("LocalPool: the task gets exactly the inherited variables and its own", async () => {
  await using pool = new LocalPool();
  const evs = await run(pool, {
    argv: ["env"],
    env: { BOI_X: "a=b c", PATH: "/usr/bin:/bin" },
  });
  const seen = stdout(evs).trim().split("\n").sort();
  const want = ["HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "SHELL"]
    .flatMap((k) => {
      const v = Deno.env.get(k);
      return v === undefined ? [] : [`${k}=${v}`];
    });
  want.push("BOI_X=a=b c", "PATH=/usr/bin:/bin");
  assert.deepEqual(seen, want.sort());
});

Deno.test("LocalPool: output is relayed byte for byte: binary, 2 MB bursts on both streams", async () => {
  await using pool = new LocalPool();
  const dir = await Deno.makeTempDir({ prefix: "boi-lp-" });
  try {
    const blob = new Uint8Array(2 * 1024 * 1024 + 7);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 131 + (i >> 9)) & 0xff;
    await Deno.writeFile(`${dir}/blob`, blob);
    const evs = await run(pool, {
      shell: "cat blob; cat blob >&2; cat blob",
      workdir: dir,
    });
    const join = (kind: "stdout" | "stderr") => {
      const parts = evs.flatMap((e) =>
        kind in e ? [(e as Record<string, Uint8Array>)[kind]] : []
      );
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let off = 0;
      for (const p of parts) {
        out.set(p, off);
        off += p.length;
      }
      return out;
    };
    const out = join("stdout");
    const err = join("stderr");
    assert.equal(out.length, 2 * blob.length);
    assert.deepEqual(out.subarray(0, blob.length), blob);
    assert.deepEqual(out.subarray(blob.length), blob);
    assert.deepEqual(err, blob);
    assert.deepEqual(exitOf(evs), { code: 0, signal: null, error: null });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

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
  assert.equal(warnings.length, 1);
  assert.ok(!warnings[0].includes("\n"));
});

Deno.test("LocalPool: Spawn is idempotent per (task_id, claim_token): a second one re-attaches and replays", async () => {
  await using pool = new LocalPool();
  const req = spawnRequest({ shell: "echo $$; sleep 0.3; echo end" });
  const a = follow(pool.spawn(req));
  const pid = await a.pid;
  const b = follow(pool.spawn(req));
  assert.equal(await b.pid, pid);
  const [ea, eb] = await Promise.all([a.events, b.events]);
  assert.deepEqual(stdout(eb), `${pid}\nend\n`);
  assert.deepEqual(stdout(ea), stdout(eb));
  const c = follow(pool.spawn({ ...req, claim_token: "2" }));
  assert.notEqual(await c.pid, pid);
  await c.events;
});

Deno.test("local pool: a Kill that overtakes its Spawn is remembered and the Spawn is refused", async () => {
  await using pool = new LocalPool();
  await pool.kill({ task_id: "s.early", claim_token: "7", grace_ms: 0 });
  const events = [];
  for await (
    const ev of pool.spawn({
      task_id: "s.early",
      claim_token: "7",
      workdir: Deno.cwd(),
      argv: null,
      shell: "echo ran",
      prompt: null,
      env: {},
      timeout_ms: null,
    })
  ) events.push(ev);
  assert.deepEqual(events, [{
    exit: { code: null, signal: "SIGKILL", error: null },
  }]);
});

Deno.test("LocalPool: the spawner keeps the live groups in the state file, and removes it when closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-lp-" });
  const file = `${dir}/groups.json`;
  const read = async () => {
    try {
      return JSON.parse(await Deno.readTextFile(file)) as number[];
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
    assert.equal(await processGroupAlive(pids[1]), false);
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
    await Deno.writeTextFile(file, JSON.stringify([pgid, 999_999_999]));
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
    assert.equal(await processGroupAlive(pgid), false);
    // The file now holds this pool's groups: none yet.
    assert.equal((await Deno.readTextFile(file)).trim(), "");
    assert.equal(exitOf(await run(pool, { argv: ["true"] })).code, 0);
    await waitFor("the file rewritten", async () => {
      const t = (await Deno.readTextFile(file)).trim();
      return t === "[]" ? true : notYet(t);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
