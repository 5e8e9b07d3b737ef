/**
 * Log retention policy (SPEC §9), pure: given the task logs a node holds and
 * the time, which files to delete. The shell (`node/shell/retention.ts`)
 * scans the disk and deletes; this decides.
 */

/** One task log on disk, as the shell found it. */
export interface LogFile {
  /** Path as the shell will delete it. */
  readonly path: string;
  readonly spec_id: string;
  readonly task_id: string;
  /** Bytes. */
  readonly size: number;
  /** Last modification, ms since the epoch. */
  readonly mtime: number;
  /**
   * Nothing will write this file again: the task is DONE, FAILED or
   * CANCELLED (or unknown to the cluster) and no worker of it runs here.
   */
  readonly terminal: boolean;
}

export interface RetentionPolicy {
  /** Logs of terminal tasks last written longer ago than this are deleted. */
  readonly max_age_ms: number;
  /** A spec's directory is trimmed, oldest terminal logs first, to at most this many bytes. */
  readonly max_spec_bytes: number;
}

export const DAY_MS = 24 * 3600 * 1000;
export const MIB = 1024 * 1024;

/** SPEC §9: 7 days, 100 MB (MiB) per spec. */
export const DEFAULT_RETENTION: RetentionPolicy = {
  max_age_ms: 7 * DAY_MS,
  max_spec_bytes: 100 * MIB,
};

export type DeleteReason = "age" | "spec_size";

export interface Deletion extends LogFile {
  readonly reason: DeleteReason;
}

/** Oldest first; ties by path so the plan is deterministic. */
function byAge(a: LogFile, b: LogFile): number {
  return a.mtime - b.mtime || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}

/**
 * The files to delete, in order: first every terminal log older than
 * `max_age_ms`, then, per spec whose remaining logs total more than
 * `max_spec_bytes`, its oldest terminal logs until the rest fits. Logs of
 * tasks that may still write (not terminal) are never deleted, even when
 * they alone exceed the cap.
 */
export function retentionPlan(
  files: readonly LogFile[],
  now: number,
  policy: RetentionPolicy = DEFAULT_RETENTION,
): Deletion[] {
  const out: Deletion[] = [];
  const kept = new Map<string, LogFile[]>();
  for (const f of [...files].sort(byAge)) {
    if (f.terminal && now - f.mtime > policy.max_age_ms) {
      out.push({ ...f, reason: "age" });
      continue;
    }
    let list = kept.get(f.spec_id);
    if (!list) kept.set(f.spec_id, list = []);
    list.push(f);
  }
  for (const spec of [...kept.keys()].sort()) {
    const list = kept.get(spec)!;
    let total = list.reduce((n, f) => n + f.size, 0);
    for (const f of list) {
      if (total <= policy.max_spec_bytes) break;
      if (!f.terminal) continue;
      out.push({ ...f, reason: "spec_size" });
      total -= f.size;
    }
  }
  return out;
}
