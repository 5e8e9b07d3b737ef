/**
 * The Host-header guard against DNS rebinding. A web page the operator
 * opens can point its own host name at 127.0.0.1 and then read the node's
 * GET endpoints as its own origin (`/internal/view` holds every task's env,
 * `/tail/` its output): the browser's same-origin rule is by name, not by
 * address. Such a request still names the page's host in `Host`, so the
 * node answers only to names it is known by: IP literals, `localhost` (and
 * `*.localhost`, which browsers resolve to loopback themselves), the host of
 * `BOI_HTTP_ADDR`, and the names an operator lists in `BOI_HTTP_HOSTS`
 * (`*`: any). A request without `Host` is no browser's and passes.
 */

/** Which host names the HTTP server answers to, besides IP literals and localhost. */
export type HostNames = ReadonlySet<string> | "*";

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** `BOI_HTTP_HOSTS` and the listen host as the set {@linkcode hostRefusal} takes. */
export function hostNames(
  listenHost: string,
  extra: readonly string[],
): HostNames {
  if (extra.includes("*")) return "*";
  return new Set([listenHost, ...extra].map(normal));
}

/** A 421 naming the host when the request's `Host` is not one of ours, else null. */
export function hostRefusal(req: Request, names: HostNames): Response | null {
  const header = req.headers.get("host");
  if (names === "*" || header === null) return null;
  const host = normal(hostOf(header));
  if (
    host === "localhost" || host.endsWith(".localhost") || IPV4.test(host) ||
    host.startsWith("[") || names.has(host)
  ) {
    return null;
  }
  return new Response(
    `Host ${
      JSON.stringify(header.slice(0, 120))
    } is not a name of this node: list it in BOI_HTTP_HOSTS (DNS rebinding guard)\n`,
    { status: 421, headers: { "content-type": "text/plain; charset=utf-8" } },
  );
}

/** The host of a `Host` value: without its port; an IPv6 literal keeps its brackets. */
function hostOf(header: string): string {
  if (header.startsWith("[")) {
    const end = header.indexOf("]");
    return end < 0 ? header : header.slice(0, end + 1);
  }
  const colon = header.lastIndexOf(":");
  return colon < 0 ? header : header.slice(0, colon);
}

/** Lower case, without the root's trailing dot (`Localhost.` is `localhost`). */
function normal(host: string): string {
  const h = host.trim().toLowerCase();
  return h.endsWith(".") ? h.slice(0, -1) : h;
}
