/** Reference workspace: a fresh directory per task attempt under the data dir. */
import type {
  CleanupRequest,
  PrepareRequest,
  PrepareResponse,
  Workspace,
} from "./contracts.ts";

export class DirWorkspace implements Workspace {
  constructor(private readonly root: string) {}

  async prepare(req: PrepareRequest): Promise<PrepareResponse> {
    const workdir = `${this.root}/${req.spec_id}/${req.task_id}`;
    // A previous attempt's leftovers must not leak into this one.
    await Deno.remove(workdir, { recursive: true }).catch(() => {});
    await Deno.mkdir(workdir, { recursive: true });
    return { workdir, env: {} };
  }

  async cleanup(req: CleanupRequest): Promise<void> {
    await Deno.remove(req.workdir, { recursive: true }).catch(() => {});
  }
}
