/**
 * Log retention on disk (SPEC §9): scans `<data_dir>/logs/<spec_id>/<task_id>.log`,
 * asks the pure policy (`node/core/retention_policy.ts`) what to delete,
 * deletes it. Runs hourly on every node and on `POST /internal/logs/sweep`
 * (`boi logs sweep`); the node that wrote the logs is the one that deletes them.
 */
import { ID_PATTERN, TASK_ID_PATTERN } from "../schema.ts";
import {
  DEFAULT_RETENTION,
  type Deletion,
  type LogFile,
  retentionPlan,
  type RetentionPolicy,
} from "../core/retention_policy.ts";

/** One deleted file, as the sweep reports it. */
export interface SweptFile {
  /** Relative to the logs root: `<spec_id>/<task_id>.log`. */
  path: string;
  spec_id: string;
  task_id: string;
  size: number;
  mtime: number;
  reason: Deletion["reason"];
}

/** What one sweep did (the body of `POST /internal/logs/sweep`). */
export interface SweepReport {
  node_id: string;
  at: number;
  policy: RetentionPolicy;
  /** Log files looked at. */
  scanned: number;
  /** Their total size before the sweep. */
  scanned_bytes: number;
  deleted: SweptFile[];
  freed_bytes: number;
  errors: string[];
}

export interface SweepEnv {
  node_id: string;
  /** `<data_dir>/logs`. */
  logs_dir: string;
  /** True when nothing will write this task's log again (see `LogFile.terminal`). */
  terminal(task_id: string): boolean;
  /** True when every task of the spec is terminal here (its empty directory may go). */
  spec_finished(spec_id: string): boolean;
  now(): number;
  policy?: RetentionPolicy;
  info(msg: string, fields: Record<string, unknown>): void;
}

/** Every task log under `logsDir`; anything else (other names, symlinks, dirs) is left alone. */
export async function scanLogs(
  logsDir: string,
  terminal: (task_id: string) => boolean,
): Promise<LogFile[]> {
  const out: LogFile[] = [];
  let specs: Deno.DirEntry[];
  try {
    specs = await Array.fromAsync(Deno.readDir(logsDir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const spec of specs) {
    if (!spec.isDirectory || spec.isSymlink || !ID_PATTERN.test(spec.name)) {
      continue;
    }
    const dir = `${logsDir}/${spec.name}`;
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      continue; // removed meanwhile
    }
    for (const f of entries) {
      if (!f.isFile || f.isSymlink || !f.name.endsWith(".log")) continue;
      const task_id = f.name.slice(0, -4);
      if (
        !TASK_ID_PATTERN.test(task_id) ||
        task_id.slice(0, task_id.indexOf(".")) !== spec.name
      ) continue;
      const path = `${dir}/${f.name}`;
      let st: Deno.FileInfo;
      try {
        st = await Deno.lstat(path);
      } catch {
        continue;
      }
      if (!st.isFile) continue;
      out.push({
        path,
        spec_id: spec.name,
        task_id,
        size: st.size,
        mtime: st.mtime?.getTime() ?? 0,
        terminal: terminal(task_id),
      });
    }
  }
  return out;
}

/** One sweep: scan, plan, delete; a spec directory left empty is removed once its spec is finished. */
export async function sweepLogs(env: SweepEnv): Promise<SweepReport> {
  const policy = env.policy ?? DEFAULT_RETENTION;
  const at = env.now();
  const files = await scanLogs(env.logs_dir, env.terminal);
  const plan = retentionPlan(files, at, policy);
  const report: SweepReport = {
    node_id: env.node_id,
    at,
    policy,
    scanned: files.length,
    scanned_bytes: files.reduce((n, f) => n + f.size, 0),
    deleted: [],
    freed_bytes: 0,
    errors: [],
  };
  const touched = new Set<string>();
  for (const d of plan) {
    // A worker may have started again on this task since the scan.
    if (!env.terminal(d.task_id)) continue;
    try {
      await Deno.remove(d.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        report.errors.push(`${d.path}: ${(e as Error).message}`);
      }
      continue;
    }
    touched.add(d.spec_id);
    const rel = `${d.spec_id}/${d.task_id}.log`;
    report.deleted.push({
      path: rel,
      spec_id: d.spec_id,
      task_id: d.task_id,
      size: d.size,
      mtime: d.mtime,
      reason: d.reason,
    });
    report.freed_bytes += d.size;
    env.info("log deleted by retention", {
      path: rel,
      task_id: d.task_id,
      bytes: d.size,
      age_s: Math.round((at - d.mtime) / 1000),
      reason: d.reason,
    });
  }
  for (const spec of touched) {
    if (!env.spec_finished(spec)) continue;
    // Fails (and stays) when not empty.
    await Deno.remove(`${env.logs_dir}/${spec}`).catch(() => {});
  }
  return report;
}

/**
 * Runs `sweep` every `intervalMs` (first after `firstDelayMs`), one at a time;
 * stops when `signal` aborts.
 */
export function scheduleSweeps(
  sweep: () => Promise<unknown>,
  signal: AbortSignal,
  intervalMs: number,
  firstDelayMs: number,
): void {
  let timer: ReturnType<typeof setTimeout>;
  const tick = async () => {
    if (signal.aborted) return;
    try {
      await sweep();
    } catch {
      // the sweep logs its own failures; the next one runs anyway
    } finally {
      if (!signal.aborted) timer = setTimeout(tick, intervalMs);
    }
  };
  timer = setTimeout(tick, firstDelayMs);
  signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
}
