/**
 * The one hop of a tail request to the node that has the log (`x-boi-hop`
 * stops loops): a node asked for a log it does not have passes the request
 * on, so any node answers for any task.
 */
import { type TailEnv, text } from "./tail.ts";
import { HOP_HEADER } from "./tail_hop.ts";
import type { TailRequest } from "./tail_request.ts";
import { fetchError } from "../fetch_error.ts";

/** How long the forward may take to connect. */
const FORWARD_CONNECT_MS = 5000;

/** Forwards a tail request once to the node that has the log, streaming its answer through. */
export async function forward(
  r: TailRequest,
  owner: string,
  addr: string,
  env: TailEnv,
  headers: Headers,
): Promise<Response> {
  const q = new URLSearchParams({ since_bytes: String(r.since_bytes) });
  if (r.max_bytes !== null) q.set("max_bytes", String(r.max_bytes));
  if (r.follow) q.set("follow", "1");
  const url = `http://${addr}/internal/tail/${r.task_id}?${q}`;
  const connect = new AbortController();
  const timer = setTimeout(
    () => connect.abort(new Error("no answer within 5 s")),
    FORWARD_CONNECT_MS,
  );
  let res: Response;
  try {
    res = await env.fetch(url, {
      headers: { [HOP_HEADER]: env.node_id },
      signal: AbortSignal.any([env.signal, connect.signal]),
    });
  } catch (e) {
    // Under the permission lock a peer not in BOI_PEERS is refused by Deno.
    const locked = e instanceof Deno.errors.NotCapable;
    return text(
      502,
      `log unavailable: ${
        locked
          ? `node ${owner} at ${addr} is not in this node's permission lock (list it in BOI_PEERS)`
          : `cannot reach node ${owner} at ${addr}`
      }: ${fetchError(e)}`,
      headers,
    );
  } finally {
    clearTimeout(timer);
  }
  for (const [k, v] of res.headers) {
    if (
      k.startsWith("x-boi-") || k === "content-type" || k === "content-length"
    ) {
      headers.set(k, v);
    }
  }
  headers.set("x-boi-via", env.node_id);
  env.streams(1);
  let open = true;
  const done = () => {
    if (open) env.streams(-1);
    open = false;
  };
  const upstream = res.body;
  if (upstream === null) {
    done();
    return new Response(null, { status: res.status, headers });
  }
  const reader = upstream.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done: end } = await reader.read();
        if (end) {
          done();
          controller.close();
        } else controller.enqueue(value);
      } catch (e) {
        done();
        controller.error(e);
      }
    },
    cancel(reason) {
      done();
      reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: res.status, headers });
}
