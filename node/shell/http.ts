/** The node's HTTP surface (SPEC §12): health and metrics today; tail and the dashboard come later. */
import type { BoiNode } from "./node.ts";

/** Routes one request; `node` is null until registration finishes. */
export function handleHttp(req: Request, node: () => BoiNode | null): Response {
  const url = new URL(req.url);
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { allow: "GET, HEAD" },
    });
  }
  const n = node();
  switch (url.pathname) {
    case "/healthz": {
      if (!n) return json(503, { status: "starting" });
      const h = n.health();
      return json(h.ok ? 200 : 503, {
        status: h.ok ? "ok" : "unhealthy",
        reason: h.reason,
        node_id: n.deps.config.node_id,
      });
    }
    case "/metrics":
      if (!n) return new Response("", { status: 503 });
      return new Response(n.metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    default:
      return new Response("not found\n", { status: 404 });
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}
