/**
 * Secure mode's rule for the node's HTTP (issue 13): `/internal/*` and every
 * mutating request need a certificate signed by the cluster CA; the
 * read-only pages (`/healthz`, `/metrics`, the dashboard) do not.
 */
import type { Peer } from "./https_server.ts";

/** A 403 for a caller without a cluster certificate, or null to go on. */
export function certGate(
  req: Request,
  path: string,
  peer: Peer | undefined,
): Response | null {
  if (peer === undefined || peer.authorized) return null; // open mode, or a cluster member
  const mutating = req.method !== "GET" && req.method !== "HEAD";
  if (!mutating && !path.startsWith("/internal/")) return null;
  return new Response(
    "a client certificate signed by the cluster CA is required\n",
    {
      status: 403,
      headers: { "content-type": "text/plain; charset=utf-8" },
    },
  );
}
