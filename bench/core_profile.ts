/**
 * V8's sampling profiler through node:inspector (Deno has no --cpu-prof),
 * started and stopped around each timed part of bench/core_changes.ts; the
 * report sums every part's samples by function.
 * @module
 */
import { Session } from "node:inspector";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Samples by function, self and inclusive, over every start/stop span. */
export class Profiler {
  #session: Session | null = null;
  #samples = 0;
  #self = new Map<string, number>();
  #total = new Map<string, number>();

  constructor(readonly on: boolean) {}

  #post<T>(method: string, params: object = {}): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.#session!.post(
        method,
        params,
        (e, r) => e ? reject(e) : resolve(r as T),
      )
    );
  }

  async start(): Promise<void> {
    if (!this.on) return;
    if (this.#session === null) {
      this.#session = new Session();
      this.#session.connect();
      await this.#post("Profiler.enable");
      await this.#post("Profiler.setSamplingInterval", { interval: 100 });
    }
    await this.#post("Profiler.start");
  }

  async stop(): Promise<void> {
    if (!this.on) return;
    const { profile } = await this.#post<{
      profile: { nodes: ProfileNode[]; samples: number[] };
    }>("Profiler.stop");
    this.#add(profile.nodes, profile.samples);
  }

  #add(nodes: ProfileNode[], samples: number[]): void {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of nodes) {
      for (const c of n.children ?? []) parent.set(c, n.id);
    }
    const name = (n: ProfileNode) =>
      `${n.callFrame.functionName || "(anon)"} ${
        n.callFrame.url.split("/").slice(-1)[0]
      }:${n.callFrame.lineNumber + 1}`;
    for (const id of samples) {
      const leaf = name(byId.get(id)!);
      this.#self.set(leaf, (this.#self.get(leaf) ?? 0) + 1);
      const seen = new Set<string>();
      for (
        let cur: number | undefined = id;
        cur !== undefined;
        cur = parent.get(cur)
      ) {
        const k = name(byId.get(cur)!);
        if (seen.has(k)) continue;
        seen.add(k);
        this.#total.set(k, (this.#total.get(k) ?? 0) + 1);
      }
    }
    this.#samples += samples.length;
  }

  /** The top functions by self and by inclusive samples; null when off. */
  report(): string | null {
    if (!this.on) return null;
    this.#session?.disconnect();
    const top = (m: Map<string, number>, k: number) =>
      [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([f, c]) =>
        `${(100 * c / this.#samples).toFixed(1).padStart(5)} %  ${f}`
      ).join("\n");
    return `${this.#samples} samples (line numbers are of the transpiled code)\n-- self --\n${
      top(this.#self, 30)
    }\n-- total --\n${top(this.#total, 40)}`;
  }
}
