/**
 * LocalPool in-process, on its perl spawner: pid == pgid == sid, the whole
 * tree killed, the task's own exit status, environment and cwd, output byte
 * for byte, Spawn idempotency. The spawner's own life (its death, the pool's
 * end, the state file): local_pool_spawner_test.ts.
 */
import assert from "node:assert/strict";
import { LocalPool } from "./local_pool.ts";
import type { SpawnRequest } from "./contracts.ts";
import { spawnRequest } from "./test_spawn_request.ts";
import {
  processAlive,
  processGroupAlive,
  processTable,
} from "../../tests/harness/process.ts";
import { waitFor } from "../../tests/harness/wait.ts";

import { exitOf, follow, run, stderr, stdout } from "./test_worker_events.ts";

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
  const req = {
    task_id: "s.early",
    claim_token: "7",
    workdir: Deno.cwd(),
    argv: null,
    shell: "echo ran",
    prompt: null,
    env: {},
    timeout_ms: null,
  };
  // A second Spawn of the same key re-attaches to the refusal: never runs.
  for (const attempt of [1, 2]) {
    const events = [];
    for await (const ev of pool.spawn(req)) events.push(ev);
    assert.deepEqual(events, [{
      exit: { code: null, signal: "SIGKILL", error: null },
    }], `Spawn ${attempt}`);
  }
});

Deno.test("LocalPool: a task ends when its leader does, even if a process that left its group keeps the output pipes open", async () => {
  await using pool = new LocalPool();
  const t0 = performance.now();
  // setsid: the sleep leaves the task's group (and so its group kill) but
  // keeps the task's stdout and stderr.
  const evs = await run(pool, {
    shell: "setsid sleep 30 & echo $!; sleep 0.3; exit 3",
    timeout_ms: null,
  });
  const ms = performance.now() - t0;
  const escaped = Number(stdout(evs).trim());
  try {
    assert.deepEqual(exitOf(evs), { code: 3, signal: null, error: null });
    assert.ok(await processAlive(escaped), "the sleep did not get away");
    // The spawner's drain: 1 to 2 s after the leader (whole seconds).
    assert.ok(ms < 4000, `the exit came ${Math.round(ms)} ms after the start`);
  } finally {
    if (escaped > 1) Deno.kill(escaped, "SIGKILL");
  }
});
