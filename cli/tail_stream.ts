/**
 * One HTTP read of a task's log from its node (`GET /internal/tail/...`),
 * copied to the output; a drop is a `Dropped` the tail loop resumes from.
 */
import { CliError, EXIT } from "./context.ts";
import type {
  TailDeps,
  TailOptions,
  TailResult,
  TailTarget,
} from "./tail_loop.ts";
import { fetchError } from "../node/fetch_error.ts";
import { HOP_HEADER } from "../node/shell/tail_hop.ts";

const CONNECT_MS = 5000;

/** A stream that ended early, or a request that failed: try again from the offset. */
export class Dropped extends Error {}

/**
 * One request from `r.offset`, copied to the output until the node ends it.
 * Throws `Dropped` to retry from the offset, `CliError` to stop.
 */
export async function stream(
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
      // Only from the node etcd named: one whose view is newer would forward
      // our offsets, counted in its log, to the next attempt's node.
      res = await deps.fetch(url, {
        signal: ac.signal,
        headers: { [HOP_HEADER]: "cli" },
      });
    } catch (e) {
      throw new Dropped(
        `cannot reach node ${t.node_id} at ${t.addr}: ${fetchError(e)}`,
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
