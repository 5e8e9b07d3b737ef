/** Reference workspace: a fresh directory per task attempt under the data dir. */
import type {
  CleanupRequest,
  PrepareRequest,
  PrepareResponse,
  Workspace,
} from "./contracts.ts";

/**
 * The common case costs one mkdir and one rmdir: exceptions (a NotFound per
 * prepare) and recursive walks were most of this plugin's CPU per task.
 */
export class DirWorkspace implements Workspace {
  constructor(private readonly root: string) {}

  async prepare(req: PrepareRequest): Promise<PrepareResponse> {
    const workdir = `${this.root}/${req.spec_id}/${req.task_id}`;
    try {
      Deno.mkdirSync(workdir);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        // A previous attempt's leftovers must not leak into this one.
        await Deno.remove(workdir, { recursive: true });
      } else if (!(e instanceof Deno.errors.NotFound)) throw e;
      // First task of its spec (every single-task dispatch): sync, as above;
      // the async op's thread-pool hop was ~1 ms of dispatch → started.
      Deno.mkdirSync(workdir, { recursive: true });
    }
    return { workdir, env: {} };
  }

  async cleanup(req: CleanupRequest): Promise<void> {
    try {
      Deno.removeSync(req.workdir); // empty: the task left nothing behind
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      await Deno.remove(req.workdir, { recursive: true }).catch(() => {});
    }
  }
}
