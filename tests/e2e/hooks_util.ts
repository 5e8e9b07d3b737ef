/** Helpers of the hooks end-to-end tests: plugins files, the JSONL sink, the HWM, queue stats. */
import { stringifyYaml } from "../../node/yaml.ts";
import {
  type HasClient,
  makeTempDir,
  type NodeProc,
  REPO_ROOT,
} from "../harness/mod.ts";
import { Keys } from "../../node/keys.ts";
import type { QueueStats } from "../../node/hooks/mod.ts";

/** The command of a plugin script under plugins/ with the narrow plugin permissions. */
export function pluginArgv(script: string): string[] {
  return [
    Deno.execPath(),
    "run",
    "-q",
    "-P=plugin",
    "--allow-net=unix:{socket}",
    `${REPO_ROOT}/plugins/${script}`,
  ];
}

/** Options of {@linkcode hooksPlugins}. */
export interface HooksPluginOptions {
  tier?: "audit" | "best_effort";
  /** @default "hooks_jsonl.ts" */
  script?: string;
  env?: Record<string, string>;
  subscribe?: string[];
  wal_segment_events?: number;
}

/** Writes a BOI_PLUGINS file with a hooks plugin (workspace and pool default); returns its path. */
export async function hooksPlugins(o: HooksPluginOptions): Promise<string> {
  const dir = await makeTempDir("boi-hooks-plugins-");
  const path = `${dir}/plugins.yaml`;
  await Deno.writeTextFile(
    path,
    stringifyYaml({
      hooks: {
        argv: pluginArgv(o.script ?? "hooks_jsonl.ts"),
        env: o.env ?? {},
        ...(o.tier ? { tier: o.tier } : {}),
        ...(o.subscribe ? { subscribe: o.subscribe } : {}),
        ...(o.wal_segment_events
          ? { wal_segment_events: o.wal_segment_events }
          : {}),
        health_interval_s: 1,
      },
    }),
  );
  return path;
}

/** One line of the hooks_jsonl sink. */
export interface SinkLine {
  seq: number;
  emitter_node_id: string;
  kind: string;
  ts: number;
  payload: Record<string, unknown>;
  dedup_key: string;
  tier: string;
}

/** The sink's lines (a torn last line skipped). */
export async function readSink(file: string): Promise<SinkLine[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: SinkLine[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // torn by a crash
    }
  }
  return out;
}

/** Lines with duplicate dedup keys removed (what a deduplicating consumer keeps). */
export function dedup(lines: SinkLine[]): SinkLine[] {
  const seen = new Set<string>();
  return lines.filter((l) => !seen.has(l.dedup_key) && seen.add(l.dedup_key));
}

/** `/boi/hooks-hwm/<plugin>/<node>` as stored, or null. */
export async function readHwm(
  etcd: HasClient,
  plugin: string,
  node: string,
): Promise<{ seq: number; acked_at: number } | null> {
  const text = await etcd.client()
    .get(`${new Keys().dir("hooks-hwm")}${plugin}/${node}`).string();
  return text === null ? null : JSON.parse(text);
}

/** The node's own view of its hooks queue. */
export async function queueStats(
  n: NodeProc,
  plugin = "hooks",
): Promise<QueueStats> {
  const res = await fetch(`${n.url}/internal/hooks/${plugin}/queue`);
  if (res.status !== 200) {
    throw new Error(`queue stats: HTTP ${res.status}: ${await res.text()}`);
  }
  return await res.json();
}

/** The segment files in the node's hooks WAL directory, sorted (empty if it does not exist). */
export async function walFiles(n: NodeProc): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(`${n.dataDir}/hooks-wal`)) {
      // Segments only: `<plugin>.jsonl.next` exists for a moment during a
      // rotate (node/hooks/wal.ts) and holds a header only.
      if (/^[^.]+(\.\d+-\d+)?\.jsonl$/.test(e.name)) out.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** A spec of `n` quick tasks. */
export function quickSpec(name: string, n: number, run = "'true'"): string {
  return `name: ${name}\ntasks:\n` +
    Array.from({ length: n }, (_, i) => `  - id: t${i}\n    run: ${run}\n`)
      .join("");
}
