/**
 * The node's HTTP surface (SPEC §12): health, metrics, task log tail, log
 * retention, and the read-only dashboard.
 *
 * Routing works on the raw request target, never on a normalized URL: a
 * path whose normalization would differ from what was sent (`..`, `.`,
 * `%2e%2e`, `\`) is refused with 400 instead of being resolved to some other
 * route.
 */
import { handleTail } from "./tail.ts";
import type { Observability, ObservedNode } from "./observability.ts";
import { jsonResponse, stateEvents, taskDetail } from "./dashboard.ts";
import { dashboardHtml, tailHtml } from "./dashboard_page.ts";
import { checkTaskId } from "./tail.ts";
import { handleDegradedHttp } from "./degraded_http.ts";
import { handlePluginHttp, PLUGINS_PATH } from "./plugin_http.ts";
import { handleHooksHttp, HOOKS_PATH, type HooksNode } from "./hooks_http.ts";
import type { AdminGate } from "./admin_gate.ts";
import { certGate } from "../identity/http_gate.ts";
import type { Peer } from "../identity/https_server.ts";
import type { IdentityService } from "../identity/service.ts";

/** Secure mode's caller identity and the identity endpoints (node/identity). */
export interface HttpIdentity {
  /** Set when served over TLS: who the caller is. */
  peer?: Peer;
  /** `cluster init`, `token mint`, `cluster admin` endpoints. */
  service?: IdentityService;
}

const TAIL = "/internal/tail/";

/** Path and query exactly as sent (Deno keeps the request target as is in `req.url`). */
export function rawTarget(url: string): { path: string; query: string } {
  const authority = url.indexOf("://");
  const slash = url.indexOf("/", authority < 0 ? 0 : authority + 3);
  const target = slash < 0 ? "/" : url.slice(slash);
  const q = target.indexOf("?");
  return q < 0
    ? { path: target, query: "" }
    : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/**
 * Routes one request; `node` is null until registration finishes. Every
 * POST passes `gate` first (admin secret, no browser origin); without a gate
 * every POST is refused.
 */
export function handleHttp(
  req: Request,
  node: () => ObservedNode | null,
  obs?: Observability,
  gate?: Pick<AdminGate, "check">,
  id: HttpIdentity = {},
): Response | Promise<Response> {
  const { path, query } = rawTarget(req.url);
  const noCert = certGate(req, path, id.peer); // identity/http_gate.ts: secure mode needs a cluster certificate
  if (noCert !== null) return noCert;
  if (req.method === "POST") {
    const refused = gate ? gate.check(req) : text(403, "no admin gate");
    if (refused !== null) return refused;
  }
  const n: ObservedNode | null = node();
  const degraded = handleDegradedHttp(req, n); // degraded_http.ts: /internal/view, /internal/dispatch-rejected
  if (degraded !== null) return degraded;
  const post = req.method === "POST";
  if (!post && req.method !== "GET" && req.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { allow: "GET, HEAD, POST" },
    });
  }

  if (path.startsWith(TAIL) || path === TAIL.slice(0, -1)) {
    if (post) return notAllowed("GET, HEAD");
    if (!n || !obs) return text(503, "starting");
    return handleTail(req, path.slice(TAIL.length), query, obs.tailEnv(n))
      .finally(() => obs.countTail(n));
  }
  let normalized: string;
  try {
    normalized = new URL(req.url).pathname;
  } catch {
    return text(400, "bad request target");
  }
  if (normalized !== path) {
    return text(400, `bad path: ${JSON.stringify(path.slice(0, 120))}`);
  }

  if (path.startsWith(PLUGINS_PATH)) return handlePluginHttp(req, path, n); // plugin_http.ts: POST /internal/plugins/{name}/restart
  if (path.startsWith(HOOKS_PATH)) {
    return handleHooksHttp(req, path, n as HooksNode | null); // hooks_http.ts: GET /internal/hooks/{plugin}/queue
  }
  const identity = id.service?.handle(req, path); // identity/service.ts: cluster init, token mint, admin grant|revoke
  if (identity) return identity;
  if (path === "/internal/logs/sweep") {
    if (!post) return notAllowed("POST");
    if (!n || !obs || !obs.ready(n)) return text(503, "starting");
    return obs.sweep(n).then(
      (r) => jsonResponse(200, r),
      (e) => jsonResponse(500, { error: String(e) }),
    );
  }
  if (post) return notAllowed("GET, HEAD");

  switch (path) {
    case "/healthz": {
      if (!n) {
        return json(503, {
          status: "starting",
          reason: "starting: not registered in etcd yet",
        });
      }
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
    case "/":
    case "/index.html":
      if (!n) return text(503, "starting");
      return html(dashboardHtml(n.deps.config.node_id));
    case "/api/state":
      if (!n || !obs) return json(503, { status: "starting" });
      return jsonResponse(200, obs.state(n));
    case "/api/events":
      if (!n || !obs) return json(503, { status: "starting" });
      return stateEvents(
        () => obs.state(n),
        obs.signal,
      );
  }
  if (path.startsWith("/api/tasks/") || path.startsWith("/tail/")) {
    if (!n) return text(503, "starting");
    const api = path.startsWith("/api/");
    const id = path.slice(api ? "/api/tasks/".length : "/tail/".length);
    const bad = checkTaskId(id);
    if (bad !== null) return text(400, bad);
    if (!api) return html(tailHtml(n.deps.config.node_id, id));
    const d = taskDetail(n.view, id);
    return d === null
      ? jsonResponse(404, { error: `unknown task ${id}` })
      : jsonResponse(200, d);
  }
  return text(404, "not found");
}

function notAllowed(allow: string): Response {
  return new Response("method not allowed\n", {
    status: 405,
    headers: { allow },
  });
}

function text(status: number, body: string): Response {
  return new Response(`${body}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

function html(body: string): Response {
  return new Response(body, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "content-security-policy":
        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src *; img-src 'self' data:",
    },
  });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}
