/** HTTP requests written byte for byte, for what `fetch` will not send (a raw request target, any `Host`). */

/**
 * One GET of `target` exactly as given, to the node at `url`
 * (`http://host:port`), with `Host: host`; the status and body.
 */
export async function rawGet(
  url: string,
  target: string,
  host = "127.0.0.1",
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const conn = await Deno.connect({
    hostname: u.hostname,
    port: Number(u.port),
  });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const text = await new Response(conn.readable).text();
    return {
      status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
      body: text.slice(text.indexOf("\r\n\r\n") + 4),
    };
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}
