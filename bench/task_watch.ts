/**
 * Follows every envelope under the dispatch queue with one etcd watch of the
 * whole prefix (no polling) so a bench can wait for "all N terminal", read
 * per-task times, and count the key writes a run made (group commit puts
 * dozens of them in one revision, so revisions alone undercount the work).
 */
import type { Etcd3 } from "etcd3";
import type { KeyChange } from "../node/core/events.ts";
import { watchPrefix } from "../node/shell/etcd_io.ts";
import type { PrefixWatch } from "../node/shell/watch_stream.ts";

/** What the bench keeps of an envelope. */
export interface TaskSeen {
  state: string;
  dispatched_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  claimant_node_id: string | null;
  fence: number | null;
  attempts: number;
}

const TERMINAL = new Set(["DONE", "FAILED", "CANCELLED"]);

/** A watch on `<prefix>` from the current revision on; envelopes are decoded. */
export class TaskWatch {
  readonly tasks = new Map<string, TaskSeen>();
  /** Key changes (puts and deletes) seen anywhere under the prefix. */
  writes = 0;
  #terminal = 0;
  #waiters: {
    check: () => boolean;
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];
  #failed: Error | null = null;
  #watcher: PrefixWatch | null = null;
  #onEnvelope: ((id: string, t: TaskSeen, rev: number) => void) | null = null;

  private constructor(readonly root: string, readonly prefix: string) {}

  /**
   * Starts watching; resolves once the watch is in place on the server. The
   * node's own watch stream and decoder (node/shell/watch_stream.ts): the
   * library's watcher cost the bench's process ~0.1 ms of CPU per task of the
   * control plane, CPU the measured cluster competes for on two cores.
   */
  static async start(client: Etcd3, prefix = "/boi/"): Promise<TaskWatch> {
    const tw = new TaskWatch(prefix, `${prefix}dispatch-queue/`);
    const from = Number((await client.get(prefix).exec()).header.revision) + 1;
    tw.#watcher = await watchPrefix(
      client,
      tw.root,
      from,
      (changes) => tw.#apply(changes),
      (err) => tw.#fail(err),
    );
    return tw;
  }

  /** etcd cancelled the watch (a compacted revision): every wait fails with it. */
  #fail(err: Error): void {
    this.#failed = new Error(`bench: the task watch failed: ${err.message}`);
    for (const w of this.#waiters) w.reject(this.#failed);
    this.#waiters = [];
  }

  /** Called for every envelope change (after the map is updated). */
  onEnvelope(fn: (id: string, t: TaskSeen, rev: number) => void): void {
    this.#onEnvelope = fn;
  }

  #apply(changes: KeyChange[]): void {
    for (const c of changes) {
      this.writes++;
      if (c.kv === null || !c.key.startsWith(this.prefix)) continue;
      const id = c.key.slice(this.prefix.length);
      const env = JSON.parse(c.kv.value);
      const prev = this.tasks.get(id);
      const seen: TaskSeen = {
        state: env.state,
        dispatched_at: env.dispatched_at ?? null,
        started_at: env.started_at ?? null,
        finished_at: env.finished_at ?? null,
        claimant_node_id: env.claimant_node_id ?? null,
        fence: env.fence ?? null,
        attempts: env.attempts ?? 0,
      };
      if (!(prev && TERMINAL.has(prev.state)) && TERMINAL.has(seen.state)) {
        this.#terminal++;
      }
      this.tasks.set(id, seen);
      this.#onEnvelope?.(id, seen, c.kv.mod_revision);
    }
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  /** Tasks seen in a terminal state. */
  get terminal(): number {
    return this.#terminal;
  }

  /** Count by state, for progress and timeout messages. */
  states(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.tasks.values()) out[t.state] = (out[t.state] ?? 0) + 1;
    return out;
  }

  /** Resolves when `check` holds after some watch event; rejects after `timeoutMs` naming `what`. */
  until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `bench: ${what} not reached within ${timeoutMs} ms; states seen: ${
              JSON.stringify(this.states())
            }`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    await this.#watcher?.cancel();
  }
}
