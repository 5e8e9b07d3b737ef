/**
 * The task log files under `<data_dir>/logs/<spec_id>/`: each spec's
 * directory is made once, each task's file on its first output (creating a
 * file costs this machine's kernel 0.2-2 ms of CPU, more than the rest of a
 * silent task's node-side work; tail serves a silent task's missing log as
 * empty).
 */
import type { Logger } from "./log.ts";

/**
 * Log directories known to exist, by the dispatch (its `dispatched_at`)
 * they were found for; retention may remove one, then the open fails and is
 * retried.
 */
export class TaskLogs {
  /** `reused`: the directory was there before that dispatch reached us. */
  #dirs = new Map<string, { dispatched_at: number; reused: boolean }>();

  constructor(private readonly log: Logger) {}

  /**
   * Opens a task's log for appending. Sync on purpose: a local mkdir/open
   * takes microseconds, while the async ops' thread-pool hop cost ~1.5 ms
   * each under load (measured).
   */
  open(dir: string, path: string, dispatchedAt: number): Deno.FsFile {
    const open = () =>
      Deno.openSync(path, { append: true, create: true, write: true });
    if (this.#dirs.has(dir)) {
      try {
        return open();
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        this.#dirs.delete(dir); // retention removed the spec's directory
      }
    }
    this.dir(dir, dispatchedAt);
    return open();
  }

  /**
   * Once an attempt started: its spec's directory, and no log of an earlier
   * dispatch of the same spec id (retired, then dispatched again with `--id`)
   * under a first attempt, or `boi tail` showed that run's output before
   * this one's. Never throws: the command runs, and its first output retries.
   */
  started(dir: string, path: string, dispatchedAt: number, attempt: number) {
    try {
      if (!this.dir(dir, dispatchedAt) || attempt !== 1) return;
      try {
        Deno.removeSync(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    } catch (err) {
      this.log.warn("cannot make the log directory", {
        dir,
        error: `${(err as Error)?.message ?? err}`.split("\n")[0],
      });
    }
  }

  /**
   * The spec's log directory, made once (tail tells a silent task from a
   * removed log by it); whether it holds what an earlier dispatch of that
   * spec id left.
   */
  dir(dir: string, dispatchedAt: number): boolean {
    const known = this.#dirs.get(dir);
    if (known?.dispatched_at === dispatchedAt) return known.reused;
    // Ours for an earlier dispatch, or there before this process (a restart
    // mid-spec too: its first attempts that ran here are attempts ≥ 2 now).
    let reused = known !== undefined;
    try {
      Deno.mkdirSync(dir);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) reused = true;
      else if (e instanceof Deno.errors.NotFound) {
        Deno.mkdirSync(dir, { recursive: true }); // no logs root yet
      } else throw e;
    }
    this.#dirs.set(dir, { dispatched_at: dispatchedAt, reused });
    return reused;
  }
}
