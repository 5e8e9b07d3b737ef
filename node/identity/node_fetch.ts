/**
 * Node-to-node HTTP in secure mode (SPEC §10: tail forwarding uses the node
 * certificates): the `http://<addr>` URLs the shell builds become `https://`,
 * verified against the cluster CA, with this node's certificate shown.
 */

/** A fetch for calls to other nodes; `fetch` itself in open mode. */
export function nodeFetch(
  tls: { cert: string; key: string; ca: string } | null,
): typeof fetch {
  if (tls === null) return fetch;
  const client = Deno.createHttpClient({
    caCerts: [tls.ca],
    cert: tls.cert,
    key: tls.key,
  });
  return (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    return fetch(url.replace(/^http:\/\//, "https://"), { ...init, client });
  };
}
