/**
 * Removing what a task left in its workdir, whatever it did to the modes.
 * @module
 */

/**
 * Removes `path` and all under it, also where the task made directories
 * read-only (`chmod -R a-w`, a Go module cache): unprivileged, unlinking in
 * such a directory fails with EACCES, and the leftovers made every later
 * attempt's Prepare on that node fail. Symlinks are removed, never followed.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
    return;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
  }
  await ownerWritable(path);
  await Deno.remove(path, { recursive: true });
}

/**
 * Gives the owner rwx on `path`, a directory, so it can be renamed out of its
 * parent (that updates its `..`) or emptied: nothing if it is not one.
 */
export function ownerWritableSync(path: string): boolean {
  const info = Deno.lstatSync(path);
  if (!info.isDirectory) return false;
  Deno.chmodSync(path, ((info.mode ?? 0) & 0o7777) | 0o700);
  return true;
}

/** {@linkcode ownerWritableSync} on every directory under `dir` (lstat: links stay links). */
async function ownerWritable(dir: string): Promise<void> {
  try {
    if (!ownerWritableSync(dir)) return;
  } catch {
    return; // gone meanwhile, or not ours: the remove says so
  }
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) await ownerWritable(`${dir}/${e.name}`);
  }
}
