/**
 * `GET /internal/hooks/{plugin}/queue` (`boi plugin queue`): this node's
 * view of its hooks queue — unacked, HWM, oldest unacked, stalls.
 */
import type { QueueStats } from "../hooks/mod.ts";

export const HOOKS_PATH = "/internal/hooks/";

/** What this module uses of a BoiNode. */
export interface HooksNode {
  readonly hooks?: { stats(): QueueStats } | null;
}

/** Routes `/internal/hooks/...`; `path` is the raw, already normalized path. */
export function handleHooksHttp(
  req: Request,
  path: string,
  node: HooksNode | null,
): Response {
  const m = /^\/internal\/hooks\/([a-z0-9][a-z0-9_-]{0,62})\/queue$/.exec(
    path,
  );
  if (m === null) return json(404, { error: "not found" });
  if (req.method === "POST") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { allow: "GET, HEAD" },
    });
  }
  if (node === null) return json(503, { error: "starting" });
  const stats = node.hooks?.stats();
  if (!stats || stats.plugin !== m[1]) {
    return json(404, { error: `no hooks plugin named ${m[1]} on this node` });
  }
  return json(200, stats);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}
