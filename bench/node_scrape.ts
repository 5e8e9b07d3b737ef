/** Reads a counter off each node's `GET /metrics`, for rows that count per node. */
import type { NodeProc } from "../tests/harness/mod.ts";

/** The unlabelled sample of `name` in Prometheus text; NaN when absent. */
export function sampleOf(text: string, name: string): number {
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === name) return Number(v);
  }
  return NaN;
}

/** `name` on every node, in node order (NaN for a node that did not answer). */
export async function scrapeCounter(
  nodes: readonly NodeProc[],
  name: string,
): Promise<number[]> {
  return await Promise.all(nodes.map(async (n) => {
    try {
      const res = await fetch(`${n.url}/metrics`, {
        signal: AbortSignal.timeout(5000),
      });
      return sampleOf(await res.text(), name);
    } catch {
      return NaN;
    }
  }));
}
