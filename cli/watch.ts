/**
 * Live view of task envelopes under one key prefix: list, then watch from the
 * next revision, with a periodic re-list as a safety net for lost or
 * compacted watches. Used by `dispatch --wait` and `tasks cancel`.
 */
import type { Watcher } from "etcd3";
import { type Envelope, Envelope as EnvelopeSchema } from "../node/schema.ts";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import { decodeKv, type Store, type Versioned } from "./store.ts";

/** Re-list period; also how often an outage is noticed while waiting. */
export const POLL_MS = 2000;
/** Consecutive failed re-lists before giving up with "etcd unreachable". */
export const MAX_POLL_FAILURES = 3;

/** Called for every new version of a task; `null` when its key was deleted. */
export type ChangeHandler = (
  taskId: string,
  now: Versioned<Envelope> | null,
  before: Versioned<Envelope> | undefined,
) => void;

/** The latest known envelope of every task under a prefix. */
export class EnvelopeFeed {
  /** Latest version per task id; deleted tasks are removed. */
  readonly tasks = new Map<string, Versioned<Envelope>>();
  private watcher: Watcher | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private failure: Error | null = null;
  private wake: (() => void)[] = [];
  private closed = false;
  private lastRevision = 0;

  constructor(
    private readonly store: Store,
    private readonly prefix: string,
    private readonly onChange: ChangeHandler = () => {},
    private readonly wanted: (taskId: string) => boolean = () => true,
  ) {}

  /** Lists, starts the watch and the re-list timer; throws if etcd is unreachable. */
  async start(): Promise<void> {
    await this.relist();
    await this.startWatch();
    this.schedule();
  }

  /** Resolves true on the next change, false after `ms`; rejects once etcd is lost. */
  changed(ms: number): Promise<boolean> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = this.wake.filter((w) => w !== done);
        resolve(false);
      }, Math.max(0, ms));
      const done = () => {
        clearTimeout(timer);
        if (this.failure !== null) reject(this.failure);
        else resolve(true);
      };
      this.wake.push(done);
    });
  }

  /** Feeds a version learnt elsewhere (e.g. from our own txn). */
  accept(taskId: string, item: Versioned<Envelope> | null, revision: number) {
    if (!this.wanted(taskId)) return;
    const before = this.tasks.get(taskId);
    if (item === null) {
      if (before === undefined || before.mod_revision >= revision) return;
      this.tasks.delete(taskId);
    } else {
      if (before !== undefined && before.mod_revision >= item.mod_revision) {
        return;
      }
      this.tasks.set(taskId, item);
    }
    this.onChange(taskId, item, before);
    this.notify();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.watcher !== null) {
      this.watcher.removeAllListeners();
      this.watcher.cancel().catch(() => {});
      this.watcher = null;
    }
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = [];
    for (const w of wake) w();
  }

  private taskIdOf(key: string): string {
    return key.slice(this.queueDir().length);
  }

  private queueDir(): string {
    // The prefix is either a directory (".../dispatch-queue/spec.") or one
    // key; task ids are what follows ".../dispatch-queue/".
    const i = this.prefix.lastIndexOf("/");
    return this.prefix.slice(0, i + 1);
  }

  private async relist(): Promise<void> {
    const { items, revision } = await this.store.list(
      this.prefix,
      EnvelopeSchema,
    );
    this.lastRevision = Math.max(this.lastRevision, revision);
    const seen = new Set<string>();
    for (const item of items) {
      const id = this.taskIdOf(item.key);
      seen.add(id);
      this.accept(id, item, revision);
    }
    for (const id of [...this.tasks.keys()]) {
      if (!seen.has(id)) this.accept(id, null, revision);
    }
  }

  private async startWatch(): Promise<void> {
    try {
      const w = await this.store.watchPrefix(
        this.prefix,
        this.lastRevision + 1,
      );
      if (this.closed) {
        w.cancel().catch(() => {});
        return;
      }
      w.on("put", (kv) => {
        const item = decodeKv(kv, EnvelopeSchema, this.store.warn);
        if (item !== null) {
          this.accept(this.taskIdOf(item.key), item, item.mod_revision);
        }
      });
      w.on("delete", (kv) => {
        this.accept(
          this.taskIdOf(kv.key.toString()),
          null,
          Number(kv.mod_revision),
        );
      });
      w.on("error", () => {
        // Cancelled by etcd (e.g. compaction): fall back to re-listing,
        // which restarts the watch from a fresh revision.
        w.removeAllListeners();
        if (this.watcher === w) this.watcher = null;
      });
      this.watcher = w;
    } catch {
      // The periodic re-list keeps the view current and retries the watch.
      this.watcher = null;
    }
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(async () => {
      try {
        await this.relist();
        this.failures = 0;
        if (this.watcher === null && !this.closed) await this.startWatch();
      } catch (err) {
        this.failures++;
        if (this.failures >= MAX_POLL_FAILURES) {
          this.failure = err instanceof EtcdUnreachableError
            ? err
            : new EtcdUnreachableError(
              this.store.endpoints,
              (err as Error).message,
            );
          this.notify();
          return;
        }
      }
      this.schedule();
    }, POLL_MS);
  }
}
