/**
 * Which events of a committed transaction are still to be written, so its
 * audit intent is resolved by the last of them. A CLAIMED→DONE write emits
 * task.started then task.completed, one append each: a crash between them
 * must leave the intent open, or the restart would not know task.completed
 * is missing. Only the next expected kind counts: a monitor's
 * task.cancelled of the same task in between is not one of this commit's
 * events. In memory only; the WAL holds the intents themselves.
 * @module
 */

/** A commit whose events have not all been written yet. */
export interface PendingCommit {
  intent: number;
  /** Kinds still to come, in the order the core emits them. */
  left: string[];
  /** Kinds already written. */
  written: Set<string>;
}

export class CommitEvents {
  /** Prepared intents (token) → the subscribed kinds their commit emits, in order. */
  #expected = new Map<number, string[]>();
  /** task id → its committed transaction whose events are being written. */
  #committed = new Map<string, PendingCommit>();

  /** The intent `token` was prepared for a commit that emits `kinds`. */
  expect(token: number, kinds: string[]): void {
    this.#expected.set(token, kinds);
  }

  /** Forgets the expectation of a transaction that did not commit (or will be asked of etcd). */
  drop(token: number): void {
    this.#expected.delete(token);
  }

  /**
   * `token`'s transaction committed: its events come next. Returns the
   * task's previous commit if its events never all came (should not happen).
   */
  committed(token: number, taskId: string): PendingCommit | undefined {
    const stale = this.take(taskId);
    this.#committed.set(taskId, {
      intent: token,
      left: [...(this.#expected.get(token) ?? [])],
      written: new Set(),
    });
    this.#expected.delete(token);
    return stale;
  }

  /** Removes and returns the task's commit whose events are still being written. */
  take(taskId: string): PendingCommit | undefined {
    const p = this.#committed.get(taskId);
    this.#committed.delete(taskId);
    return p;
  }

  /** An event of `taskId` is written now: the intent it resolves, if it is its commit's last. */
  written(taskId: string, kind: string): number | undefined {
    const p = this.#committed.get(taskId);
    if (p === undefined || p.left[0] !== kind) return undefined;
    p.left.shift();
    p.written.add(kind);
    if (p.left.length > 0) return undefined;
    this.#committed.delete(taskId);
    return p.intent;
  }
}
