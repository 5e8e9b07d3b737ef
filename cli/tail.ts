/**
 * `tail <task_id> [--follow] [--since-bytes N] [--max-bytes N]` (SPEC §9):
 * finds the node that has the task's log through the envelope
 * (`claimant_node_id`, or `ran_on` once finished), reads its `addr` from
 * `/boi/nodes/`, and copies `GET /internal/tail/...` to stdout as raw bytes.
 *
 * Offsets are byte offsets into that node's log file. The command counts
 * what it wrote, and every reconnect asks for `since_bytes = offset`, so a
 * dropped connection leaves no gap and no duplicate. At the end it prints
 * `tail: offset N (node X)` on stderr, so a caller can resume with
 * `--since-bytes N`.
 */
import { securedFetch } from "./node_http.ts";
import { InvalidArgumentError, Option } from "@commander-js/extra-typings";
import type { Command } from "@commander-js/extra-typings";
import {
  Envelope,
  NodeRecord,
  TASK_ID_PATTERN,
  type TaskState,
  TERMINAL_STATES,
} from "../node/schema.ts";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import {
  CliError,
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  idArgument,
  type Io,
} from "./context.ts";

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

const CONNECT_MS = 5000;
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

/** A stream that ended early, or a request that failed: try again from the offset. */
class Dropped extends Error {}

/**
 * The tail loop. Resolves the node, streams from the offset, and on a drop
 * (or, following, when the task moved or ended) resolves again and resumes.
 * A task that moves to another node (its claimant died, or a retry ran
 * elsewhere) has a new log there: the loop says so on stderr and follows
 * that log from 0.
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
      deps.warn(
        `tail: task ${taskId} moved from node ${r.node_id} to ${t.node_id}: following its log there from offset 0`,
      );
      r.offset = 0;
    }
    r.node_id = t.node_id;
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

/**
 * One request from `r.offset`, copied to the output until the node ends it.
 * Throws `Dropped` to retry from the offset, `CliError` to stop.
 */
async function stream(
  taskId: string,
  t: TailTarget,
  opts: TailOptions,
  r: TailResult,
  deps: TailDeps,
  watchMs: number,
  progressed: () => void = () => {},
): Promise<void> {
  const q = new URLSearchParams({ since_bytes: String(r.offset) });
  const left = opts.max_bytes === null ? null : opts.max_bytes - r.written;
  if (left !== null) q.set("max_bytes", String(left));
  if (opts.follow) q.set("follow", "1");
  const url = `http://${t.addr}/internal/tail/${taskId}?${q}`;
  const ac = new AbortController();
  const stop = () => ac.abort();
  deps.signal.addEventListener("abort", stop, { once: true });
  const connect = setTimeout(() => ac.abort(), CONNECT_MS);
  let watcher: ReturnType<typeof setInterval> | undefined;
  let cut: string | null = null;
  try {
    let res: Response;
    try {
      res = await deps.fetch(url, { signal: ac.signal });
    } catch (e) {
      throw new Dropped(
        `cannot reach node ${t.node_id} at ${t.addr}: ${(e as Error).message}`,
      );
    } finally {
      clearTimeout(connect);
    }
    if (res.status !== 200) {
      const body = (await res.text().catch(() => "")).trim();
      if (res.status === 404 && (t.terminal || !opts.follow)) {
        throw new CliError(
          body.startsWith("log unavailable")
            ? body
            : `log unavailable: ${body}`,
        );
      }
      if (res.status === 400) throw new CliError(`tail: ${body}`);
      if (res.status === 416) {
        // Only a first request can ask past the end: later ones resume at
        // what this run counted. Nothing was printed; say what would work.
        const size = res.headers.get("x-boi-size") ?? "?";
        throw r.written === 0 && r.offset === opts.since_bytes
          ? new CliError(
            `tail: --since-bytes ${r.offset} is past the end of the log of ${taskId} on node ${t.node_id} (${size} bytes)`,
            EXIT.usage,
          )
          : new CliError(`tail: ${body}`);
      }
      throw new Dropped(`node ${t.node_id} answered ${res.status}: ${body}`);
    }
    if (opts.follow && watchMs > 0) {
      // A stream can hang (a frozen node) or outlive the task on a lagging
      // node: check etcd now and then and cut it when it cannot be right.
      let terminalSince = 0;
      watcher = setInterval(async () => {
        const now = await deps.resolve().catch(() => null);
        if (now === null || cut !== null) return;
        if (now.node_id !== t.node_id) {
          cut = `task ${taskId} moved to node ${now.node_id}`;
        } else if (now.addr === null) {
          cut = `node ${t.node_id} is not live any more`;
        } else if (now.terminal) {
          terminalSince ||= Date.now();
          if (Date.now() - terminalSince > 2 * watchMs) {
            cut = `node ${t.node_id} kept the stream open after the task ended`;
          }
        }
        if (cut !== null) ac.abort();
      }, watchMs);
    }
    const reader = res.body!.getReader();
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw new Dropped(
            cut ??
              `connection to node ${t.node_id} dropped: ${
                (e as Error).message
              }`,
          );
        }
        if (chunk.done) break;
        await deps.write(chunk.value);
        r.offset += chunk.value.length;
        r.written += chunk.value.length;
        progressed();
      }
    } finally {
      reader.releaseLock();
    }
    const end = res.headers.get("x-boi-end-offset");
    if (!opts.follow && end !== null && Number(end) !== r.offset) {
      throw new Dropped(`short read from node ${t.node_id}`);
    }
  } finally {
    clearInterval(watcher);
    deps.signal.removeEventListener("abort", stop);
  }
}

/** Options of the `tail` command as commander parses them. */
export interface TailCommandOptions extends CommonOptions {
  follow?: true;
  sinceBytes?: number;
  maxBytes?: number;
}

async function writeAll(bytes: Uint8Array): Promise<void> {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(await Deno.stdout.write(rest));
}

/** Runs `tail`; returns the exit code. */
export async function runTail(
  io: Io,
  taskId: string,
  opts: TailCommandOptions,
  write: (bytes: Uint8Array) => Promise<void> = writeAll,
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  if (ctx.json && opts.follow) {
    throw new CliError("--json cannot be used with --follow", EXIT.usage);
  }
  return await ctx.withStore(async (store) => {
    const resolve = async (): Promise<TailTarget> => {
      const { item, exists } = await store.get(ctx.keys.task(taskId), Envelope);
      if (!exists) throw new CliError(`task ${taskId} not found`);
      if (item === null) {
        throw new CliError(`task ${taskId} has an invalid record`);
      }
      const e = item.value;
      const terminal = TERMINAL_STATES.has(e.state);
      const node_id = terminal
        ? e.ran_on ?? e.claimant_node_id
        : e.claimant_node_id ?? e.ran_on;
      let addr: string | null = null;
      if (node_id !== null) {
        addr = (await store.get(ctx.keys.node(node_id), NodeRecord)).item
          ?.value.addr ?? null;
      }
      return { state: e.state, terminal, node_id, addr };
    };
    const chunks: Uint8Array[] = [];
    const topts: TailOptions = {
      follow: opts.follow === true,
      since_bytes: opts.sinceBytes ?? 0,
      max_bytes: opts.maxBytes ?? null,
    };
    const result = newResult(topts);
    const offsetLine = () =>
      `tail: offset ${result.offset}${
        result.node_id ? ` (node ${result.node_id})` : ""
      }`;
    try {
      await tailLoop(taskId, topts, {
        resolve,
        fetch: await securedFetch(ctx), // https with the CLI certificate in a secure cluster
        write: async (b) => {
          if (ctx.json) chunks.push(b);
          else await write(b);
        },
        warn: (l) => ctx.warn(l),
        signal,
      }, result);
    } catch (e) {
      // What was printed stays printed: say where to resume.
      if (result.written > 0 && !ctx.json) ctx.warn(offsetLine());
      throw e;
    }
    if (ctx.json) {
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      ctx.printJson({
        task_id: taskId,
        node_id: result.node_id,
        state: result.state,
        since_bytes: opts.sinceBytes ?? 0,
        offset: result.offset,
        bytes: result.written,
        log: new TextDecoder().decode(all),
      });
    }
    ctx.warn(offsetLine());
    return result.interrupted ? 130 : EXIT.ok;
  });
}

function byteCount(value: string): number {
  if (!/^\d{1,15}$/.test(value)) {
    throw new InvalidArgumentError(
      `must be a byte count (0 or more): got ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

/** Registers `tail` on the program. */
export function registerTail(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const [etcd, prefix, json] = commonOptions();
  program
    .command("tail")
    .description(
      "print a task's log (stdout and stderr, raw bytes) from the node that has it",
    )
    .addArgument(idArgument("<task_id>", "task id", TASK_ID_PATTERN))
    .option("-f, --follow", "keep printing new output until the task ends")
    .addOption(
      new Option("--since-bytes <n>", "start at this byte offset").argParser(
        byteCount,
      ),
    )
    .addOption(
      new Option("--max-bytes <n>", "print at most this many bytes").argParser(
        byteCount,
      ),
    )
    .addOption(etcd).addOption(prefix).addOption(json)
    .action(async (taskId, opts) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
      for (const s of signals) Deno.addSignalListener(s, stop);
      try {
        done(await runTail(io, taskId, opts, writeAll, ac.signal));
      } catch (e) {
        if (e instanceof Deno.errors.BrokenPipe) done(EXIT.ok);
        else throw e;
      } finally {
        for (const s of signals) Deno.removeSignalListener(s, stop);
      }
    });
}
