/** The retention sweep on a real directory tree (sparse files, real mtimes). */
import assert from "node:assert/strict";
import { DAY_MS, MIB } from "../core/retention_policy.ts";
import { scanLogs, sweepLogs } from "./retention.ts";

async function logFile(
  root: string,
  task: string,
  size: number,
  ageMs: number,
): Promise<string> {
  const spec = task.split(".")[0];
  await Deno.mkdir(`${root}/${spec}`, { recursive: true });
  const path = `${root}/${spec}/${task}.log`;
  await Deno.writeTextFile(path, "x");
  await Deno.truncate(path, size); // sparse: cheap however big
  const t = new Date(Date.now() - ageMs);
  await Deno.utime(path, t, t);
  return path;
}

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

Deno.test("sweep: old terminal logs and over-cap specs go; running, recent, foreign and symlinked files stay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-ret-" });
  try {
    const root = `${dir}/logs`;
    const old = await logFile(root, "r.old", 110 * MIB, 8 * DAY_MS);
    const cur = await logFile(root, "r.cur", 1000, 0);
    const running = await logFile(root, "r.run", 10, 30 * DAY_MS);
    const big1 = await logFile(root, "b.one", 60 * MIB, 3 * DAY_MS);
    const big2 = await logFile(root, "b.two", 60 * MIB, 1 * DAY_MS);
    const gone = await logFile(root, "g.only", 5, 9 * DAY_MS);
    // Not task logs: never touched.
    await Deno.writeTextFile(`${root}/r/notes.txt`, "keep");
    await Deno.writeTextFile(`${root}/r/x.y.log`, "wrong spec dir");
    const outside = `${dir}/outside.log`;
    await Deno.writeTextFile(outside, "outside");
    await Deno.utime(outside, new Date(0), new Date(0));
    await Deno.symlink(outside, `${root}/r/r.link.log`);

    const files = await scanLogs(root, () => true);
    assert.deepEqual(
      files.map((f) => f.task_id).sort(),
      ["b.one", "b.two", "g.only", "r.cur", "r.old", "r.run"],
    );
    const logged: unknown[] = [];
    const report = await sweepLogs({
      node_id: "n1",
      logs_dir: root,
      terminal: (id) => id !== "r.run",
      spec_finished: (spec) => spec === "g",
      now: () => Date.now(),
      info: (_m, f) => logged.push(f),
    });
    assert.deepEqual(
      report.deleted.map((d) => [d.path, d.reason]),
      [
        ["g/g.only.log", "age"],
        ["r/r.old.log", "age"],
        ["b/b.one.log", "spec_size"],
      ],
    );
    assert.equal(report.freed_bytes, 110 * MIB + 60 * MIB + 5);
    assert.equal(report.scanned, 6);
    assert.deepEqual(report.errors, []);
    assert.equal(logged.length, 3);
    for (const p of [old, big1, gone]) assert.equal(await exists(p), false, p);
    for (const p of [cur, running, big2, outside, `${root}/r/notes.txt`]) {
      assert.equal(await exists(p), true, p);
    }
    // The finished spec's empty directory went with its last log.
    assert.equal(await exists(`${root}/g`), false);
    assert.equal(await exists(`${root}/b`), true);
    // A second sweep finds nothing more.
    const again = await sweepLogs({
      node_id: "n1",
      logs_dir: root,
      terminal: (id) => id !== "r.run",
      spec_finished: () => false,
      now: () => Date.now(),
      info: () => {},
    });
    assert.deepEqual(again.deleted, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweep: a missing logs directory is an empty sweep", async () => {
  const report = await sweepLogs({
    node_id: "n1",
    logs_dir: "/nonexistent/boi/logs",
    terminal: () => true,
    spec_finished: () => true,
    now: () => 0,
    info: () => {},
  });
  assert.equal(report.scanned, 0);
  assert.deepEqual(report.deleted, []);
});
