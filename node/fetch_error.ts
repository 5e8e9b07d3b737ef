/**
 * Why a fetch failed, in one line. Deno's fetch rejects with `fetch failed`
 * and keeps the reason (connection refused, a certificate that does not
 * name the host) in `cause`, wrapped in `error sending request for url
 * (…): client error (Connect): `; the reason is what an operator needs.
 */
export function fetchError(e: unknown): string {
  let msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error ? e.cause : undefined;
  if (msg === "fetch failed" && cause !== undefined) {
    msg = cause instanceof Error ? cause.message : String(cause);
  }
  return msg.split("\n")[0]
    .replace(/^(Error: )?error sending request for url \([^)]*\): /, "")
    .replace(/^client error \(Connect\): /, "");
}
