/**
 * The node's memory on /metrics: resident set and V8 heap at scrape time, so
 * an operator sees which part grows (issue 16 found the peak is garbage
 * between collections and ArrayBuffers outside the heap, not retained state;
 * see docs/architecture.md, "Node RSS under load").
 */
import type { Metrics } from "./metrics.ts";

/** What {@linkcode declareMemoryMetrics} reads; `Deno.memoryUsage` in the node. */
export type MemoryUsage = () => {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
};

/**
 * Declares `process_resident_memory_bytes` (the Prometheus name) and
 * `boi_heap_bytes{kind}`: `total` (pages V8 holds), `used` (live plus not
 * yet collected garbage), `external` (ArrayBuffers and other memory V8
 * tracks outside its heap). Read at scrape time only: nothing per event.
 */
export function declareMemoryMetrics(
  m: Metrics,
  usage: MemoryUsage = () => Deno.memoryUsage(),
): void {
  m.declare(
    "process_resident_memory_bytes",
    "gauge",
    "resident set size of the node process",
  );
  m.declare(
    "boi_heap_bytes",
    "gauge",
    "V8 heap of the node: total (held), used (live and garbage), external",
  );
  m.collect(() => {
    const u = usage();
    m.set("process_resident_memory_bytes", u.rss);
    m.reset("boi_heap_bytes"); // no unlabelled series beside the three kinds
    m.set("boi_heap_bytes", u.heapTotal, { kind: "total" });
    m.set("boi_heap_bytes", u.heapUsed, { kind: "used" });
    m.set("boi_heap_bytes", u.external, { kind: "external" });
  });
}
