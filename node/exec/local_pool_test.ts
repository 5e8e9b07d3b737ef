/**
 * LocalPool in-process, with each launcher: the setsid wrapper (what `auto`
 * picks here) and Deno's detached spawn. Both must give the same results:
 * pid == pgid == sid, the whole tree killed, the task's own exit status,
 * the same environment and cwd.
 */
import assert from "node:assert/strict";
import { LocalPool, type LocalPoolOptions } from "./local_pool.ts";
import type { SpawnRequest, WorkerEvent } from "./contracts.ts";
import { spawnRequest } from "./test_spawn_request.ts";
import {
  processAlive,
  processGroupAlive,
  processTable,
} from "../../tests/harness/process.ts";
import { waitFor } from "../../tests/harness/wait.ts";

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

const LAUNCHERS: [string, LocalPoolOptions][] = [
  ["setsid", {}],
  ["detached", { launcher: "detached" }],
];

for (const [name, opts] of LAUNCHERS) {
  Deno.test(`LocalPool (${name}): the started pid is its own session and process group`, async () => {
    const pool = new LocalPool(opts);
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

  Deno.test(`LocalPool (${name}): exit codes and signals are the task's own, argv and shell`, async () => {
    const pool = new LocalPool(opts);
    const cases: [Partial<SpawnRequest>, number | null, string | null][] = [
      [{ argv: ["true"] }, 0, null],
      [{ argv: ["false"] }, 1, null],
      [{ argv: ["sh", "-c", "exit 3"] }, 3, null],
      [{ shell: "exit 3" }, 3, null],
      [{ shell: "exit 127" }, 127, null], // the task's own 127 is no spawn failure
      [{ shell: "kill -TERM $$" }, null, "SIGTERM"],
      [{ shell: "kill -KILL $$" }, null, "SIGKILL"],
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

  Deno.test(`LocalPool (${name}): stdout and stderr streamed, cwd and argv as given`, async () => {
    const pool = new LocalPool(opts);
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

  Deno.test(`LocalPool (${name}): a program that cannot run is a spawn failure`, async () => {
    const pool = new LocalPool(opts);
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

  Deno.test(`LocalPool (${name}): Kill takes the leader and its background grandchild`, async () => {
    const pool = new LocalPool(opts);
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

  Deno.test(`LocalPool (${name}): the timeout kills the whole tree`, async () => {
    const pool = new LocalPool(opts);
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

  Deno.test(`LocalPool (${name}): a Kill right at the start still kills`, async () => {
    const pool = new LocalPool(opts);
    // Before the pid is known (the first spawn waits for the probe) …
    const first = spawnRequest({ argv: ["sleep", "300"] });
    const w1 = follow(pool.spawn(first));
    await pool.kill({ ...first, grace_ms: 0 });
    assert.equal(exitOf(await w1.events).signal, "SIGKILL");
    // … and as soon as it is (the wrapper may not have called setsid() yet).
    for (let i = 0; i < 20; i++) {
      const req = spawnRequest({ argv: ["sleep", "300"] });
      const w = follow(pool.spawn(req));
      await w.pid;
      await pool.kill({ ...req, grace_ms: i % 2 ? 5000 : 0 });
      const exit = exitOf(await w.events);
      assert.equal(exit.signal, i % 2 ? "SIGTERM" : "SIGKILL", `run ${i}`);
    }
  });
}

Deno.test("LocalPool: the setsid wrapper gives the task exactly the environment detached does", async () => {
  const env = { BOI_X: "1", PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
  const seen: string[] = [];
  for (const [, opts] of LAUNCHERS) {
    const evs = await run(new LocalPool(opts), { argv: ["env"], env });
    seen.push(stdout(evs).split("\n").sort().join("\n"));
  }
  assert.equal(seen[0], seen[1]);
  assert.match(seen[0], /^BOI_X=1$/m);
});

Deno.test("LocalPool: without setsid, one warning and the detached spawn", async () => {
  const warnings: string[] = [];
  const pool = new LocalPool({
    setsid_paths: ["/nonexistent/setsid"],
    warn: (m) => warnings.push(m),
  });
  const a = await run(pool, { argv: ["sh", "-c", "cat /proc/$$/stat"] });
  const b = await run(pool, { shell: "exit 3" });
  assert.equal(warnings.length, 1);
  assert.ok(!warnings[0].includes("\n"));
  const started = a.find((e) => "started" in e);
  assert.ok(started && "started" in started);
  const f = stdout(a).slice(stdout(a).lastIndexOf(")") + 2).split(" ");
  assert.equal(Number(f[2]), started.started.pid);
  assert.equal(exitOf(b).code, 3);
});

Deno.test("LocalPool: a setsid that forks is refused by the probe", async () => {
  // A "setsid" that runs the program in a child and exits at once: its pid is
  // never a group id, so the pool must not use it.
  const dir = await Deno.makeTempDir({ prefix: "boi-lp-" });
  try {
    const fake = `${dir}/setsid`;
    await Deno.writeTextFile(fake, '#!/bin/sh\nshift\n"$@" &\nexit 0\n');
    await Deno.chmod(fake, 0o755);
    const warnings: string[] = [];
    const pool = new LocalPool({
      setsid_paths: [fake],
      warn: (m) => warnings.push(m),
    });
    const evs = await run(pool, { argv: ["sh", "-c", "cat /proc/$$/stat"] });
    assert.equal(warnings.length, 1);
    const started = evs.find((e) => "started" in e);
    assert.ok(started && "started" in started);
    const f = stdout(evs).slice(stdout(evs).lastIndexOf(")") + 2).split(" ");
    assert.equal(Number(f[2]), started.started.pid);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("local pool: a Kill that overtakes its Spawn is remembered and the Spawn is refused", async () => {
  const pool = new LocalPool();
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
