/**
 * The tail loop behind `tail`: finds the node that has the task's log,
 * streams it from a byte offset, and on a drop resolves the node again and
 * resumes at what it counted, so a reconnect leaves no gap and no duplicate.
 */
import { type TaskState } from "../node/schema.ts";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import { CliError } from "./context.ts";
import { Dropped, stream } from "./tail_stream.ts";

/** Where the log of a task is, as etcd says now. */
export interface TailTarget {
  state: TaskState;
  terminal: boolean;
  /** claimant_node_id, or ran_on once finished; null if it never ran. */
  node_id: string | null;
  /** The node's `addr` when it is live. */
  addr: string | null;
}

export interface TailOptions {
  follow: boolean;
  since_bytes: number;
  /** Stop after printing this many bytes. */
  max_bytes: number | null;
}

/** What the loop needs from the outside; tests supply fakes. */
export interface TailDeps {
  /** Reads the envelope and the node record; throws `CliError` for an unknown task. */
  resolve(): Promise<TailTarget>;
  fetch: typeof fetch;
  /** Writes bytes to stdout. */
  write(bytes: Uint8Array): Promise<void>;
  /** One line on stderr. */
  warn(line: string): void;
  /** Aborted by SIGINT/SIGTERM: stop, report the offset. */
  signal: AbortSignal;
  /** Re-check etcd this often while a follow is streaming. @default 2000 */
  watchMs?: number;
  /** Longest pause between reconnects. @default 2000 */
  maxBackoffMs?: number;
}

export interface TailResult {
  /** Offset after the last byte written, in `node_id`'s log. */
  offset: number;
  node_id: string | null;
  state: TaskState | null;
  /** Bytes written by this run. */
  written: number;
  /** Stopped by a signal. */
  interrupted: boolean;
}

/** The state of a tail run before its first byte. */
export function newResult(opts: TailOptions): TailResult {
  return {
    offset: opts.since_bytes,
    node_id: null,
    state: null,
    written: 0,
    interrupted: false,
  };
}

/** Consecutive failures of etcd before giving up. */
const ETCD_TRIES = 3;
/** Reconnects of a non-follow read before giving up. */
const READ_TRIES = 5;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * The tail loop. Resolves the node, streams from the offset, and on a drop
 * (or, following, when the task moved or ended) resolves again and resumes.
 * A task that moves to another node (its claimant died, or a retry ran
 * elsewhere) has a new log there: the loop reads what the old node still
 * has to the end (if it answers), says so on stderr and follows the new
 * log from where this run left it on that node (0 the first time: a node
 * keeps one log per task, attempts appended).
 */
export async function tailLoop(
  taskId: string,
  opts: TailOptions,
  deps: TailDeps,
  r: TailResult = newResult(opts),
): Promise<TailResult> {
  const watchMs = deps.watchMs ?? 2000;
  const maxBackoff = deps.maxBackoffMs ?? 2000;
  const firstBackoff = Math.min(100, maxBackoff);
  let backoff = firstBackoff;
  let etcdFailures = 0;
  let readFailures = 0;
  let notedWait = "";
  const pause = async () => {
    await sleep(backoff, deps.signal);
    backoff = Math.min(backoff * 2, maxBackoff);
  };
  const note = (line: string) => {
    if (line !== notedWait) deps.warn(line);
    notedWait = line;
  };
  const left = () =>
    opts.max_bytes === null ? null : opts.max_bytes - r.written;
  /** The node followed last, and how far this run got in each node's log. */
  let prev: TailTarget | null = null;
  const reached = new Map<string, number>();

  for (;;) {
    if (deps.signal.aborted) {
      r.interrupted = true;
      return r;
    }
    if (left() === 0) return r;
    let t: TailTarget;
    try {
      t = await deps.resolve();
      etcdFailures = 0;
    } catch (e) {
      if (!(e instanceof EtcdUnreachableError) || r.node_id === null) throw e;
      if (++etcdFailures >= ETCD_TRIES) throw e;
      await pause();
      continue;
    }
    r.state = t.state;
    if (t.node_id === null) {
      if (!opts.follow || t.terminal) {
        deps.warn(`tail: task ${taskId} has not run (state ${t.state})`);
        return r;
      }
      note(`tail: waiting for task ${taskId} to start (state ${t.state})`);
      await sleep(500, deps.signal);
      continue;
    }
    if (r.node_id !== null && t.node_id !== r.node_id) {
      // The follow was cut when etcd said it moved; the old node may still
      // have bytes of that attempt this run has not read (a slow reader).
      if (prev?.addr && (left() ?? 1) > 0) {
        await stream(taskId, prev, { ...opts, follow: false }, r, deps, 0)
          .catch(() => {}); // gone or refusing: what it had is lost to us
      }
      reached.set(r.node_id, r.offset);
      r.offset = reached.get(t.node_id) ?? 0;
      deps.warn(
        `tail: task ${taskId} moved from node ${r.node_id} to ${t.node_id}: following its log there from offset ${r.offset}`,
      );
    }
    r.node_id = t.node_id;
    prev = t;
    if (t.addr === null) {
      const msg =
        `log unavailable: node ${t.node_id} is not live (task state ${t.state})`;
      if (!opts.follow || t.terminal) throw new CliError(msg);
      note(`tail: ${msg}; waiting for the task to move`);
      await pause();
      continue;
    }

    try {
      await stream(taskId, t, opts, r, deps, watchMs, () => {
        backoff = firstBackoff;
        readFailures = 0;
        notedWait = "";
      });
      readFailures = 0;
      if (!opts.follow || left() === 0) return r;
      // The node ended the follow: the task ended there, or its worker is
      // gone (a retry is pending, or it moved). If etcd says the task is
      // over, one last plain read from the offset catches anything the
      // stream had not delivered; otherwise follow it again.
      const last = await deps.resolve().catch(() => null);
      if (last !== null && last.terminal && last.node_id === r.node_id) {
        await stream(taskId, last, { ...opts, follow: false }, r, deps, 0);
        r.state = last.state;
        return r;
      }
    } catch (e) {
      if (deps.signal.aborted) {
        r.interrupted = true;
        return r;
      }
      if (e instanceof CliError) throw e;
      if (!(e instanceof Dropped)) throw e;
      if (!opts.follow && ++readFailures >= READ_TRIES) {
        throw new CliError(`log unavailable: ${e.message}`);
      }
      note(`tail: ${e.message}; resuming at byte ${r.offset}`);
    }
    await pause();
  }
}
