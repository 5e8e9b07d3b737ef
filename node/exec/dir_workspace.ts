/** Reference workspace: a fresh directory per task attempt under the data dir. */
import type {
  CleanupRequest,
  PrepareRequest,
  PrepareResponse,
  Workspace,
} from "./contracts.ts";
import {
  ownerWritableSync,
  removeTree,
} from "../../plugins/sdk/remove_tree.ts";

/** Prefix of a removed task dir while it is deleted; no spec id starts with a dot. */
const TRASH = ".trash-";

/**
 * The common case costs one mkdir and one rmdir: exceptions (a NotFound per
 * prepare) and recursive walks were most of this plugin's CPU per task.
 */
export class DirWorkspace implements Workspace {
  /**
   * Task directories prepared and not cleaned up, by spec: the spec's own
   * directory goes with its last task, so single-task specs (every dispatch
   * of one command) do not leave an empty directory each. All file system
   * calls between a check and its act are sync, so a prepare cannot slip in
   * between the last cleanup and the spec directory's removal; a plugin
   * restarted meanwhile knows no tasks, and its rmdir fails harmlessly on a
   * spec directory still in use.
   */
  readonly #live = new Map<string, Set<string>>();

  constructor(private readonly root: string) {
    // What a crash left half deleted: moved aside, so no task dir is in it.
    try {
      for (const e of Deno.readDirSync(root)) {
        if (e.name.startsWith(TRASH)) {
          removeTree(`${root}/${e.name}`).catch(() => {});
        }
      }
    } catch { /* no root yet */ }
  }

  /**
   * Removes a task dir that is not empty; the promise is its delete. The
   * rename is sync, so it happens before any later call of this plugin: a
   * Cleanup the core gave up on (its deadline) used to go on deleting
   * `<spec>/<task>` in place while the re-claim's Prepare made the same path
   * anew, and took the new attempt's workdir with it (8 of 20 runs, helper
   * review). `moved` says the path is free already, before the delete ends.
   */
  #discard(dir: string): { moved: boolean; removed: Promise<void> } {
    const trash = `${this.root}/${TRASH}${crypto.randomUUID()}`;
    try {
      try {
        Deno.renameSync(dir, trash);
      } catch (e) {
        // A directory the task made read-only cannot leave its parent (its
        // `..` is rewritten): unprivileged, EACCES until it is writable.
        if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
        ownerWritableSync(dir);
        Deno.renameSync(dir, trash);
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        return { moved: true, removed: Promise.resolve() };
      }
      // Not movable (another file system mounted there): delete in place.
      return { moved: false, removed: removeTree(dir) };
    }
    return { moved: true, removed: removeTree(trash).catch(() => {}) };
  }

  async prepare(req: PrepareRequest): Promise<PrepareResponse> {
    const workdir = `${this.root}/${req.spec_id}/${req.task_id}`;
    try {
      Deno.mkdirSync(workdir);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        // A previous attempt's leftovers must not leak into this one; moved
        // aside, they are deleted while this attempt runs.
        const left = this.#discard(workdir);
        if (!left.moved) await left.removed;
      } else if (!(e instanceof Deno.errors.NotFound)) throw e;
      // First task of its spec (every single-task dispatch): sync, as above;
      // the async op's thread-pool hop was ~1 ms of dispatch → started.
      Deno.mkdirSync(workdir, { recursive: true });
    }
    const live = this.#live.get(req.spec_id);
    if (live) live.add(req.task_id);
    else this.#live.set(req.spec_id, new Set([req.task_id]));
    return { workdir, env: {} };
  }

  async cleanup(req: CleanupRequest): Promise<void> {
    try {
      Deno.removeSync(req.workdir); // empty: the task left nothing behind
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        await this.#discard(req.workdir).removed.catch(() => {});
      }
    }
    const live = this.#live.get(req.spec_id);
    live?.delete(req.task_id);
    if (live && live.size > 0) return;
    this.#live.delete(req.spec_id);
    // Only the workdir's own parent, a direct child of the root: never a
    // path a crafted spec_id points at.
    const specDir = `${this.root}/${req.spec_id}`;
    if (
      !req.workdir.startsWith(`${specDir}/`) || /^\.*$|\//.test(req.spec_id)
    ) {
      return;
    }
    try {
      Deno.removeSync(specDir); // only if empty
    } catch { /* in use (a restart forgot its tasks) or gone already */ }
  }
}
