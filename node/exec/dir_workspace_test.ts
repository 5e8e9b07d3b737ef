import assert from "node:assert/strict";
import { DirWorkspace } from "./dir_workspace.ts";

const req = { spec_id: "s1", task_id: "s1.t", spec_yaml: "", hints: {} };

Deno.test("dir workspace: a fresh empty directory per attempt, removed afterwards", async () => {
  const root = await Deno.makeTempDir();
  try {
    const ws = new DirWorkspace(`${root}/work`);
    const { workdir } = await ws.prepare(req);
    assert.equal(workdir, `${root}/work/s1/s1.t`);
    assert.deepEqual([...Deno.readDirSync(workdir)], []);
    // The attempt leaves files behind and crashes before its cleanup.
    await Deno.mkdir(`${workdir}/sub`);
    await Deno.writeTextFile(`${workdir}/sub/out.txt`, "x");
    const again = await ws.prepare(req);
    assert.deepEqual([...Deno.readDirSync(again.workdir)], []);
    await Deno.writeTextFile(`${again.workdir}/left.txt`, "x");
    await ws.cleanup({ ...req, workdir: again.workdir });
    assert.throws(() => Deno.statSync(again.workdir), Deno.errors.NotFound);
    await ws.prepare(req);
    await ws.cleanup({ ...req, workdir: again.workdir }); // empty
    assert.throws(() => Deno.statSync(again.workdir), Deno.errors.NotFound);
    await ws.cleanup({ ...req, workdir: again.workdir }); // already gone
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("dir workspace: a spec's directory goes with its last task, not before", async () => {
  const root = await Deno.makeTempDir();
  try {
    const ws = new DirWorkspace(`${root}/work`);
    const a = await ws.prepare({ ...req, task_id: "s1.a" });
    const b = await ws.prepare({ ...req, task_id: "s1.b" });
    await ws.cleanup({ ...req, task_id: "s1.a", workdir: a.workdir });
    assert.deepEqual(
      [...Deno.readDirSync(`${root}/work/s1`)].map((e) => e.name),
      ["s1.b"],
    );
    await ws.cleanup({ ...req, task_id: "s1.b", workdir: b.workdir });
    assert.throws(() => Deno.statSync(`${root}/work/s1`), Deno.errors.NotFound);
    // The spec comes again (a retry after the last cleanup): made anew.
    const c = await ws.prepare({ ...req, task_id: "s1.a" });
    assert.deepEqual([...Deno.readDirSync(c.workdir)], []);
    // A restarted plugin knows no tasks: a spec directory still in use stays.
    const d = await ws.prepare({ ...req, task_id: "s1.d" });
    const restarted = new DirWorkspace(`${root}/work`);
    await restarted.cleanup({ ...req, task_id: "s1.a", workdir: c.workdir });
    assert.deepEqual(
      [...Deno.readDirSync(`${root}/work/s1`)].map((e) => e.name),
      ["s1.d"],
    );
    await restarted.cleanup({ ...req, task_id: "s1.d", workdir: d.workdir });
    assert.throws(() => Deno.statSync(`${root}/work/s1`), Deno.errors.NotFound);
    // A spec_id that is not the workdir's parent removes nothing else.
    await Deno.mkdir(`${root}/empty`);
    const e = await ws.prepare({ ...req, task_id: "s1.e" });
    await ws.cleanup({
      ...req,
      spec_id: "..",
      task_id: "s1.e",
      workdir: e.workdir,
    });
    await ws.cleanup({
      ...req,
      spec_id: "../empty",
      task_id: "s1.e",
      workdir: e.workdir,
    });
    Deno.statSync(`${root}/empty`);
    Deno.statSync(`${root}/work/s1`); // its own spec_id never came: left
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("dir workspace: a Cleanup still deleting never takes the next attempt's workdir", async () => {
  const root = await Deno.makeTempDir();
  try {
    const ws = new DirWorkspace(`${root}/work`);
    for (let round = 0; round < 5; round++) {
      const { workdir } = await ws.prepare(req);
      // A task that leaves a big tree: its delete takes many file system calls.
      for (let d = 0; d < 40; d++) {
        Deno.mkdirSync(`${workdir}/d${d}`);
        for (let f = 0; f < 50; f++) {
          Deno.writeTextFileSync(`${workdir}/d${d}/f${f}`, "x");
        }
      }
      // The core gave up on the Cleanup (its deadline) and the task was
      // claimed again: the re-claim's Prepare runs while the delete goes on.
      const cleaning = ws.cleanup({ ...req, workdir });
      const again = await ws.prepare(req);
      await cleaning;
      assert.equal(again.workdir, workdir);
      assert.deepEqual(
        [...Deno.readDirSync(again.workdir)],
        [],
        `round ${round}: the new attempt's workdir is there and empty`,
      );
      await ws.cleanup({ ...req, workdir });
    }
    // Nothing half deleted is left behind in the root.
    assert.deepEqual([...Deno.readDirSync(`${root}/work`)], []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
