/**
 * Run as an unprivileged user (root ignores modes): a task's read-only
 * leftovers, through the reference workspace and `removeTree`. Prints JSON.
 */
import { DirWorkspace } from "../../../node/exec/dir_workspace.ts";
import { removeTree } from "../remove_tree.ts";

const [root] = Deno.args;
const outside = `${root}/outside`;
Deno.mkdirSync(outside);
Deno.writeTextFileSync(`${outside}/keep.txt`, "keep");

/** What `chmod -R a-w` after a build leaves, with a link out of the tree. */
function leaveReadOnly(dir: string): void {
  Deno.mkdirSync(`${dir}/cache/mod`, { recursive: true });
  Deno.writeTextFileSync(`${dir}/cache/mod/go.sum`, "x");
  Deno.symlinkSync(outside, `${dir}/cache/out`);
  for (const d of [`${dir}/cache/mod`, `${dir}/cache`, dir]) {
    Deno.chmodSync(d, 0o555);
  }
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name);
const ws = new DirWorkspace(`${root}/work`);
const req = { spec_id: "s1", task_id: "s1.t", spec_yaml: "", hints: {} };
const first = await ws.prepare(req);
leaveReadOnly(first.workdir);
const result: Record<string, unknown> = {};
try {
  const again = await ws.prepare(req); // the retry on this node
  result.retry = names(again.workdir);
  leaveReadOnly(again.workdir);
  await ws.cleanup({ ...req, workdir: again.workdir });
  // The old attempt's dir, moved aside by the retry's Prepare, is deleted
  // while the attempt runs: it goes soon after.
  const deadline = Date.now() + 5000;
  while (names(`${root}/work`).length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  result.after_cleanup = names(`${root}/work`);
} catch (e) {
  result.error = String(e);
}
const tree = `${root}/tree`;
Deno.mkdirSync(tree);
leaveReadOnly(tree);
try {
  await removeTree(tree);
  result.tree_gone = !names(root).includes("tree");
} catch (e) {
  result.tree_error = String(e);
}
result.outside = names(outside);
console.log(JSON.stringify(result));
