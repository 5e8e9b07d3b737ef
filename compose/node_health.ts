/**
 * Container health check of a boi node (compose/compose.yaml): exits 0 when
 * the node's `/healthz` (on `BOI_HTTP_ADDR`) answers 200 within 3 s, else 1
 * with the reason on stderr. A script rather than curl: the image has no curl.
 */
const addr = Deno.env.get("BOI_HTTP_ADDR") ?? "127.0.0.1:7001";
try {
  const res = await fetch(`http://${addr}/healthz`, {
    signal: AbortSignal.timeout(3000),
  });
  const body = await res.text();
  if (res.status !== 200) {
    console.error(`${addr}/healthz: ${res.status} ${body.slice(0, 200)}`);
    Deno.exit(1);
  }
} catch (e) {
  console.error(`${addr}/healthz: ${(e as Error).message}`);
  Deno.exit(1);
}
