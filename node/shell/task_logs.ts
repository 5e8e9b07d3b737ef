/**
 * The task log files under `<data_dir>/logs/<spec_id>/`: each spec's
 * directory is made once, each task's file on its first output (creating a
 * file costs this machine's kernel 0.2-2 ms of CPU, more than the rest of a
 * silent task's node-side work; tail serves a silent task's missing log as
 * empty).
 */
import type { Logger } from "./log.ts";

/** Log directories known to exist; retention may remove one, then the open fails and is retried. */
export class TaskLogs {
  #dirs = new Set<string>();

  constructor(private readonly log: Logger) {}

  /**
   * Opens a task's log for appending. Sync on purpose: a local mkdir/open
   * takes microseconds, while the async ops' thread-pool hop cost ~1.5 ms
   * each under load (measured).
   */
  open(dir: string, path: string): Deno.FsFile {
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
    this.dir(dir);
    return open();
  }

  /** {@linkcode dir} where a failure must not end the worker (its log is best effort). */
  dirQuiet(dir: string): void {
    try {
      this.dir(dir);
    } catch (err) {
      this.log.warn("cannot make the log directory", {
        dir,
        error: `${(err as Error)?.message ?? err}`.split("\n")[0],
      });
    }
  }

  /** The spec's log directory, made once (tail tells a silent task from a removed log by it). */
  dir(dir: string): void {
    if (this.#dirs.has(dir)) return;
    Deno.mkdirSync(dir, { recursive: true });
    this.#dirs.add(dir);
  }
}
