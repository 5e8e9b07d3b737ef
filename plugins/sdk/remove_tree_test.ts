import assert from "node:assert/strict";
import { tempDir } from "../test_util.ts";

/**
 * Root ignores directory modes, so the probe runs as `nobody` (setpriv) when
 * these tests run as root, as they do in CI: unprivileged is how the bug shows.
 */
async function asUnprivileged(args: string[]): Promise<Deno.CommandOutput> {
  const deno = Deno.execPath();
  if (Deno.uid() !== 0) {
    return await new Deno.Command(deno, { args, stdin: "null" }).output();
  }
  const cache = await tempDir("boi-denodir-");
  await Deno.chown(cache, 65534, 65534);
  return await new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--",
      deno,
      ...args,
    ],
    env: { DENO_DIR: cache, NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
  }).output();
}

const noSetpriv = Deno.uid() === 0 &&
  !(await new Deno.Command("setpriv", { args: ["--version"] }).output().then(
    (o) => o.success,
    () => false,
  ));
if (noSetpriv) {
  console.warn(
    "SKIP remove_tree_test: running as root without setpriv (util-linux), so no unprivileged probe",
  );
}

Deno.test({
  name:
    "workspace: a task's read-only leftovers neither fail its retry's Prepare nor stay behind, and a link out of them is not followed",
  ignore: noSetpriv,
  fn: async () => {
    const root = await tempDir("boi-ro-");
    if (Deno.uid() === 0) {
      await Deno.chmod(root, 0o777); // nobody's to write in
      await Deno.chown(root, 65534, 65534);
    }
    const probe = new URL("./testdata/readonly_leftovers.ts", import.meta.url);
    const out = await asUnprivileged([
      "run",
      "--no-check",
      "--no-lock",
      "--no-config",
      // Full read and write: Deno.symlink asks for both (the probe runs as
      // nobody, who can write little outside root).
      "--allow-read",
      "--allow-write",
      probe.pathname,
      root,
    ]);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `probe exited ${out.code}: ${stderr}`);
    const seen = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(seen, {
      retry: [],
      after_cleanup: [],
      tree_gone: true,
      outside: ["keep.txt"],
    }, stderr);
    await Deno.remove(root, { recursive: true });
  },
});
