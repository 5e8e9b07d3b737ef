/**
 * The CLI's calls to a node's HTTP: plain in an open cluster, HTTPS with the
 * CLI's cluster certificate in a secure one (the node refuses `/internal/*`
 * to callers without one).
 */
import { type Ctx, readTls } from "./context.ts";
import { CliError, EXIT } from "./errors.ts";
import { adminHeaders } from "./admin_secret.ts";
import { fetchError } from "../node/fetch_error.ts";

/** How long an identity request to a node may take. @default 20000 */
const CALL_TIMEOUT_MS = 20_000;

/** A fetch and URL scheme for talking to nodes with this context's certificates. */
export async function nodeFetcher(ctx: Ctx): Promise<{
  base(addr: string): string;
  fetch: typeof fetch;
  close(): void;
}> {
  if (ctx.tls === null) {
    return { base: (a) => `http://${a}`, fetch, close: () => {} };
  }
  const t = await readTls(ctx.tls);
  const client = Deno.createHttpClient({
    caCerts: [t.ca],
    cert: t.cert,
    key: t.key,
  });
  return {
    base: (a) => `https://${a}`,
    fetch: (input, init) => fetch(input, { ...init, client }),
    close: () => client.close(),
  };
}

/**
 * `base` as is in an open cluster; in a secure one, a fetch that turns the
 * `http://` node URLs the commands build into `https://` and shows the CLI's
 * certificate. Lets tail, plugin restart and logs sweep work unchanged.
 */
export async function securedFetch(
  ctx: Ctx,
  base: typeof fetch = fetch,
): Promise<typeof fetch> {
  if (ctx.tls === null) return base;
  const t = await readTls(ctx.tls);
  // Lives as long as the CLI process: one command, a few calls.
  const client = Deno.createHttpClient({
    caCerts: [t.ca],
    cert: t.cert,
    key: t.key,
  });
  return (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    return base(url.replace(/^http:\/\//, "https://"), { ...init, client });
  };
}

/** POSTs JSON to a node and returns its JSON answer; a refusal becomes a CliError with the node's message. */
export async function postNode(
  ctx: Ctx,
  addr: string,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  // Every mutating node request carries the cluster's admin secret (issue 11).
  const secret = await ctx.withStore((store) => adminHeaders(ctx, store));
  const f = await nodeFetcher(ctx);
  let res: Response;
  try {
    res = await f.fetch(`${f.base(addr)}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...secret },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  } catch (e) {
    f.close();
    throw new CliError(
      `cannot reach the node at ${addr}: ${
        fetchError(e)
      } (start one, or pass --node host:port)`,
    );
  }
  const text = await res.text();
  f.close();
  let doc: Record<string, unknown> = {};
  try {
    doc = JSON.parse(text);
  } catch {
    doc = { error: text.trim().slice(0, 300) };
  }
  if (!res.ok) {
    throw new CliError(
      String(doc.error ?? `HTTP ${res.status}`),
      res.status === 400 ? EXIT.usage : EXIT.failed,
    );
  }
  return doc;
}
