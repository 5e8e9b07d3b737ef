import assert from "node:assert/strict";
import { Metrics } from "./metrics.ts";
import { declareMemoryMetrics } from "./memory_metrics.ts";

Deno.test("memory metrics: read at each scrape, one series per heap kind", () => {
  const m = new Metrics();
  let rss = 100;
  declareMemoryMetrics(m, () => ({
    rss,
    heapTotal: 50,
    heapUsed: 40,
    external: 3,
  }));
  const first = m.render();
  assert.match(first, /^# TYPE process_resident_memory_bytes gauge$/m);
  assert.match(first, /^process_resident_memory_bytes 100$/m);
  assert.match(first, /^boi_heap_bytes\{kind="total"\} 50$/m);
  assert.match(first, /^boi_heap_bytes\{kind="used"\} 40$/m);
  assert.match(first, /^boi_heap_bytes\{kind="external"\} 3$/m);
  assert.doesNotMatch(first, /^boi_heap_bytes \d/m, "no unlabelled series");
  rss = 250;
  assert.match(m.render(), /^process_resident_memory_bytes 250$/m);
});

Deno.test("memory metrics: the default reads this process", () => {
  const m = new Metrics();
  declareMemoryMetrics(m);
  const rss = Number(
    m.render().match(/^process_resident_memory_bytes (\d+)$/m)?.[1],
  );
  assert.ok(rss > 1024 * 1024, `rss ${rss}`);
});
