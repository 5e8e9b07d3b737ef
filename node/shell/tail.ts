/**
 * `GET /internal/tail/{task_id}?since_bytes=N&max_bytes=M&follow=1` (SPEC §9):
 * the bytes of a task's log on this node, from byte offset N, at most M;
 * with `follow=1` the response stays open and streams new bytes until the
 * task ends here. A node that has no such log but knows (from its view)
 * which live node has it forwards the request there once, so any node
 * answers for any task.
 *
 * The id is checked against the task id grammar on the raw request target
 * (before any percent-decoding), and the file is opened only after its
 * resolved path (`realPath`) was found under the resolved logs root, by the
 * resolved path, with a check that the handle is the file that was checked.
 */
import { type TaskState, TERMINAL_STATES } from "../schema.ts";
import type { NodeView } from "../core/view.ts";
import {
  checkTaskId,
  parseTailRequest,
  type TailRequest,
} from "./tail_request.ts";
import { forward } from "./tail_forward.ts";
import { HOP_HEADER } from "./tail_hop.ts";

export { checkTaskId, parseTailRequest, type TailRequest };

/** The file operations the handler uses; tests record them. */
export interface TailFs {
  realPath(path: string): Promise<string>;
  /** Opens read-only. */
  open(path: string): Promise<Deno.FsFile>;
  lstat(path: string): Promise<Deno.FileInfo>;
}

export const denoFs: TailFs = {
  realPath: (p) => Deno.realPath(p),
  open: (p) => Deno.open(p, { read: true }),
  lstat: (p) => Deno.lstat(p),
};

/** What this node knows about a task, for tailing. */
export interface TaskLogInfo {
  state: TaskState;
  terminal: boolean;
  /** A worker of it runs here, or this node holds its claim and is about to start one. */
  active_here: boolean;
  /** The node whose log to read: the claimant while it runs, else `ran_on`. */
  log_node: string | null;
}

/** Everything the handler needs from the node. */
export interface TailEnv {
  node_id: string;
  /** `<data_dir>/logs`. */
  logs_dir: string;
  task(task_id: string): TaskLogInfo | null;
  /** `host:port` of a live node, or null. */
  node_addr(node_id: string): string | null;
  /** Browser origins allowed to read (the dashboards of live nodes). */
  origin_allowed(origin: string): boolean;
  fs: TailFs;
  /** How often a follow checks for new bytes and for the task's end. */
  poll_ms: number;
  /** Aborted when the node shuts down: every open stream ends. */
  signal: AbortSignal;
  warn(msg: string, fields: Record<string, unknown>): void;
  /** Open streams went up (+1) or down (-1). */
  streams(delta: number): void;
  fetch: typeof fetch;
}

/** A parsed, valid tail request. */
const CHUNK = 64 * 1024;
const EXPOSED = [
  "x-boi-node-id",
  "x-boi-task-id",
  "x-boi-task-state",
  "x-boi-offset",
  "x-boi-end-offset",
  "x-boi-size",
  "x-boi-follow",
  "x-boi-via",
];

/** What a node's view says about a task's log. */
export function taskLogInfo(
  view: NodeView,
  taskId: string,
): TaskLogInfo | null {
  const self = view.config.node_id;
  const env = view.tasks.get(taskId)?.value;
  const worker = view.workers.has(taskId);
  if (!env) {
    return worker
      ? {
        state: "RUNNING",
        terminal: false,
        active_here: true,
        log_node: self,
      }
      : null;
  }
  const terminal = TERMINAL_STATES.has(env.state);
  return {
    state: env.state,
    terminal,
    active_here: worker || (!terminal && env.claimant_node_id === self),
    log_node: worker
      ? self
      : terminal
      ? env.ran_on ?? env.claimant_node_id
      : env.claimant_node_id ?? env.ran_on,
  };
}

export function text(
  status: number,
  body: string,
  headers: Headers = new Headers(),
): Response {
  headers.set("content-type", "text/plain; charset=utf-8");
  return new Response(`${body}\n`, { status, headers });
}

/** The spec's log directory exists here (retention removes it once the spec is finished and its logs are gone). */
async function ranSilent(
  env: TailEnv,
  root: string,
  taskId: string,
): Promise<boolean> {
  try {
    const dir = `${root}/${taskId.slice(0, taskId.indexOf("."))}`;
    return (await env.fs.lstat(dir)).isDirectory;
  } catch {
    return false;
  }
}

function isNotFound(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound;
}

/** Sleeps `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Resolves the log of `taskId` under the resolved logs root and opens it.
 * `null`: no such file. Throws `Escape` when the path leaves the root or
 * the opened handle is not the checked file.
 */
class Escape extends Error {}

async function openLog(
  env: TailEnv,
  root: string,
  taskId: string,
): Promise<Deno.FsFile | null> {
  const specId = taskId.slice(0, taskId.indexOf("."));
  const candidate = `${root}/${specId}/${taskId}.log`;
  let resolved: string;
  try {
    resolved = await env.fs.realPath(candidate);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
  if (!resolved.startsWith(`${root}/`)) {
    throw new Escape(`resolved path leaves the logs root`);
  }
  const before = await env.fs.lstat(resolved);
  if (!before.isFile) throw new Escape("not a regular file");
  const file = await env.fs.open(resolved);
  try {
    const after = await file.stat();
    if (!after.isFile || after.ino !== before.ino || after.dev !== before.dev) {
      throw new Escape("the file changed while it was opened");
    }
  } catch (e) {
    file.close();
    throw e;
  }
  return file;
}

/** Handles one tail request; `rawId` and `rawQuery` come straight from the request target. */
export async function handleTail(
  req: Request,
  rawId: string,
  rawQuery: string,
  env: TailEnv,
): Promise<Response> {
  const headers = new Headers({
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-boi-node-id": env.node_id,
  });
  const origin = req.headers.get("origin");
  headers.set("vary", "origin");
  if (origin !== null && env.origin_allowed(origin)) {
    headers.set("access-control-allow-origin", origin);
    headers.set("access-control-expose-headers", EXPOSED.join(", "));
  }
  const parsed = parseTailRequest(rawId, rawQuery);
  if ("error" in parsed) return text(400, parsed.error, headers);
  const { task_id, since_bytes, max_bytes, follow } = parsed;
  headers.set("x-boi-task-id", task_id);
  const info = env.task(task_id);
  headers.set("x-boi-task-state", info?.state ?? "UNKNOWN");

  let root: string;
  try {
    root = await env.fs.realPath(env.logs_dir);
  } catch (e) {
    return text(
      503,
      `logs directory unavailable: ${(e as Error).message}`,
      headers,
    );
  }
  let file: Deno.FsFile | null;
  try {
    file = await openLog(env, root, task_id);
  } catch (e) {
    if (e instanceof Escape) {
      env.warn("tail refused", { task_id, reason: e.message });
      return text(400, `bad task id ${task_id}: ${e.message}`, headers);
    }
    return text(
      500,
      `cannot open the log of ${task_id}: ${(e as Error).message}`,
      headers,
    );
  }

  // The log is the one on the node of the latest attempt. A file here from
  // an earlier attempt (its lease expired, the task moved on) is not it: the
  // dashboard's tail page, reading through this node, showed that old output
  // and never the new attempt's. It is served only when that node is gone.
  const owner = info?.log_node ?? null;
  if (
    owner !== null && owner !== env.node_id && !req.headers.has(HOP_HEADER)
  ) {
    const addr = env.node_addr(owner);
    if (addr !== null) {
      file?.close();
      return await forward(parsed, owner, addr, env, headers);
    }
  }
  if (file === null) {
    if (info === null) return text(404, `unknown task ${task_id}`, headers);
    if (owner !== null && owner !== env.node_id) {
      return text(
        404,
        req.headers.has(HOP_HEADER)
          ? `no log of ${task_id} on node ${env.node_id}`
          : `log unavailable: node ${owner} is not live (task state ${info.state})`,
        headers,
      );
    }
    // A task that wrote nothing has no file (the worker runner creates it on
    // the first output); its spec's directory here says it ran here.
    if (
      !info.active_here &&
      !(owner !== null && await ranSilent(env, root, task_id))
    ) {
      return text(
        404,
        owner === null
          ? `task ${task_id} has no log yet (state ${info.state})`
          : `no log of ${task_id} on node ${env.node_id} (removed by retention?)`,
        headers,
      );
    }
    // Claimed here, the worker has not written yet: the log is empty so far.
  }

  const size = file === null ? 0 : (await file.stat()).size;
  // Logs only grow (a retry appends), so an offset past the end was never
  // handed out for this file: say so rather than answer "nothing yet".
  if (since_bytes > size) {
    file?.close();
    headers.set("x-boi-size", String(size));
    return text(
      416,
      `since_bytes ${since_bytes} is past the end of the log of ${task_id} on node ${env.node_id}: it has ${size} bytes`,
      headers,
    );
  }
  headers.set("content-type", "application/octet-stream");
  headers.set("x-boi-offset", String(since_bytes));
  headers.set("x-boi-size", String(size));
  headers.set("x-boi-follow", follow ? "1" : "0");
  let limit = max_bytes ?? Infinity;
  if (!follow) {
    limit = Math.max(0, Math.min(size - since_bytes, limit));
    headers.set("x-boi-end-offset", String(since_bytes + limit));
    headers.set("content-length", String(limit));
  }
  const ended = () => {
    const t = env.task(task_id);
    return t === null || t.terminal || !t.active_here;
  };
  const body = logStream({
    file,
    reopen: () => openLog(env, root, task_id).catch(() => null),
    pos: since_bytes,
    limit,
    follow,
    ended,
    env,
    signal: env.signal,
  });
  return new Response(body, { status: 200, headers });
}

/** The bytes of a log from `pos`, at most `limit`; with `follow`, until `ended()` and drained. */
function logStream(o: {
  file: Deno.FsFile | null;
  reopen: () => Promise<Deno.FsFile | null>;
  pos: number;
  limit: number;
  follow: boolean;
  ended: () => boolean;
  env: TailEnv;
  signal: AbortSignal;
}): ReadableStream<Uint8Array> {
  let { file, pos } = o;
  let sent = 0;
  let closed = false;
  o.env.streams(1);
  const finish = () => {
    if (closed) return;
    closed = true;
    try {
      file?.close();
    } catch { /* already closed */ }
    file = null;
    o.env.streams(-1);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          if (closed || o.signal.aborted) break;
          // Looked at before reading: once the task has ended, one more read
          // to the end of the file has everything it wrote.
          const done = o.follow && o.ended();
          const want = Math.min(CHUNK, o.limit - sent);
          if (want <= 0) break;
          file ??= o.follow ? await o.reopen() : null;
          if (file !== null) {
            await file.seek(pos, Deno.SeekMode.Start);
            const buf = new Uint8Array(want);
            const n = await file.read(buf);
            if (n !== null && n > 0) {
              pos += n;
              sent += n;
              controller.enqueue(buf.subarray(0, n));
              return;
            }
          }
          if (!o.follow || done) break;
          await sleep(o.env.poll_ms, o.signal);
        }
      } catch (e) {
        if (!closed) {
          finish();
          controller.error(e);
        }
        return;
      }
      finish();
      controller.close();
    },
    cancel() {
      finish();
    },
  }, { highWaterMark: 0 });
}
