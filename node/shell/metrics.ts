/** A minimal Prometheus text registry: counters, gauges and histograms with labels. */

type Labels = Record<string, string>;

const DEFAULT_BUCKETS = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
];

interface Family {
  type: "counter" | "gauge" | "histogram";
  help: string;
  series: Map<
    string,
    { labels: Labels; value: number; buckets?: number[]; sum?: number }
  >;
  buckets?: number[];
}

export class Metrics {
  #families = new Map<string, Family>();
  #collectors: (() => void)[] = [];

  #family(
    name: string,
    type: Family["type"],
    help: string,
    buckets?: number[],
  ): Family {
    let f = this.#families.get(name);
    if (!f) {
      this.#families.set(name, f = { type, help, series: new Map(), buckets });
    }
    return f;
  }
  #series(f: Family, labels: Labels) {
    // Most calls have no labels, several per task: skip the stringify.
    const key = hasKeys(labels) ? JSON.stringify(labels) : "{}";
    let s = f.series.get(key);
    if (!s) {
      s = { labels, value: 0 };
      if (f.type === "histogram") {
        s.buckets = f.buckets!.map(() => 0);
        s.sum = 0;
      }
      f.series.set(key, s);
    }
    return s;
  }

  /** Declares a metric so it renders (at 0) before its first observation. */
  declare(
    name: string,
    type: Family["type"],
    help: string,
    buckets = DEFAULT_BUCKETS,
  ): void {
    const f = this.#family(
      name,
      type,
      help,
      type === "histogram" ? buckets : undefined,
    );
    if (type !== "histogram" || f.series.size === 0) this.#series(f, {});
  }
  inc(name: string, labels: Labels = {}, by = 1): void {
    this.#series(this.#family(name, "counter", name), labels).value += by;
  }
  set(name: string, value: number, labels: Labels = {}): void {
    this.#series(this.#family(name, "gauge", name), labels).value = value;
  }
  /** Clears a gauge family, for gauges recomputed wholesale (e.g. tasks by state). */
  reset(name: string): void {
    this.#families.get(name)?.series.clear();
  }
  observe(name: string, value: number, labels: Labels = {}): void {
    const f = this.#family(name, "histogram", name, DEFAULT_BUCKETS);
    const s = this.#series(f, labels);
    s.value++;
    s.sum! += value;
    f.buckets!.forEach((le, i) => {
      if (value <= le) s.buckets![i]++;
    });
  }
  /** Registers a callback that refreshes gauges right before each scrape. */
  collect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  render(): string {
    for (const c of this.#collectors) c();
    const lines: string[] = [];
    for (const [name, f] of this.#families) {
      lines.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      for (const s of f.series.values()) {
        if (f.type === "histogram") {
          f.buckets!.forEach((le, i) => {
            lines.push(
              `${name}_bucket${fmt({ ...s.labels, le: String(le) })} ${
                s.buckets![i]
              }`,
            );
          });
          lines.push(
            `${name}_bucket${fmt({ ...s.labels, le: "+Inf" })} ${s.value}`,
          );
          lines.push(`${name}_sum${fmt(s.labels)} ${s.sum}`);
          lines.push(`${name}_count${fmt(s.labels)} ${s.value}`);
        } else {
          lines.push(`${name}${fmt(s.labels)} ${s.value}`);
        }
      }
    }
    return lines.join("\n") + "\n";
  }
}

function fmt(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${
      v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    }"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}
