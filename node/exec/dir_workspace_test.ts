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
