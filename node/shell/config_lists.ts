/** The comma-separated list settings of the node's config (config.ts). */

/** `BOI_PEERS`: `host:port` or `host` items; one-line error naming the bad one. */
export function parsePeers(text: string, where: string): string[] {
  const list = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const p of list) {
    const m = /^([A-Za-z0-9._-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?$/.exec(p);
    if (!m || (m[2] !== undefined && Number(m[2]) > 65535)) {
      throw new Error(
        `${where} must be a comma-separated list of host:port or host, like "10.0.0.2:7001,10.0.0.3": got ${
          JSON.stringify(p)
        }`,
      );
    }
  }
  return list;
}

/** `BOI_HTTP_HOSTS`: host names or `*`; one-line error naming the bad one. */
export function parseHosts(text: string, where: string): string[] {
  const list = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const h of list) {
    if (h !== "*" && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(h)) {
      throw new Error(
        `${where} must be a comma-separated list of host names, like "boi.example.com,build-1", or "*": got ${
          JSON.stringify(h)
        }`,
      );
    }
  }
  return list;
}
