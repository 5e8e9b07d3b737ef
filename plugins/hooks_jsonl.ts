/**
 * Reference hooks plugin: appends each event as a JSON line to
 * `BOI_HOOKS_FILE` and/or POSTs it to `BOI_HOOKS_WEBHOOK_URL`, then acks its
 * seq. With neither set it writes `<plugin data dir>/events.jsonl`. Replays
 * (same `dedup_key`) are acked without a second line or POST; audit-tier
 * lines are fsynced before the ack.
 *
 * Run: `deno run -P=plugin --allow-net=unix:<socket>[,<webhook host:port>] plugins/hooks_jsonl.ts`
 * (the file must lie under `.boi/` or `/tmp`, else add `--allow-read`/`--allow-write` for it).
 * @module
 */
import type { HookAck, HookEvent, PluginHandlers } from "./sdk/mod.ts";
import type { Hooks } from "./sdk/mod.ts";
import {
  absolutePath,
  pluginEnv,
  PluginError,
  pluginLogger,
  servePlugin,
} from "./sdk/mod.ts";

/** Options of {@linkcode jsonlHooks}. */
export interface JsonlHooksOptions {
  /** File to append JSON lines to; `null`: none. */
  file: string | null;
  /** Webhook to POST each event to; `null`: none. */
  webhook_url: string | null;
  /**
   * Deadline of one POST.
   * @default 5000
   */
  webhook_timeout_ms?: number;
  /**
   * How many recent dedup keys are remembered per sink.
   * @default 10000
   */
  dedup_window?: number;
}

/** Remembers the last `max` keys, oldest forgotten first. */
class RecentKeys {
  #keys = new Set<string>();
  constructor(private readonly max: number) {}
  has(k: string): boolean {
    return this.#keys.has(k);
  }
  add(k: string): void {
    this.#keys.add(k);
    if (this.#keys.size > this.max) {
      this.#keys.delete(this.#keys.values().next().value!);
    }
  }
}

/** The JSON line (and webhook body) of one event; the payload inlined when it parses. */
export function eventRecord(ev: HookEvent): Record<string, unknown> {
  let payload: unknown = ev.payload_json;
  try {
    payload = JSON.parse(ev.payload_json);
  } catch {
    // keep the raw text
  }
  return {
    seq: ev.seq,
    emitter_node_id: ev.emitter_node_id,
    kind: ev.kind,
    ts: ev.ts,
    payload,
    dedup_key: ev.dedup_key,
    tier: ev.tier,
  };
}

/** Seeds the file's dedup memory from the lines already in it (a replay after restart). */
async function keysInFile(file: string, into: RecentKeys): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    return;
  }
  for (const line of text.split("\n")) {
    try {
      const k = JSON.parse(line).dedup_key;
      if (typeof k === "string" && k !== "") into.add(k);
    } catch {
      // a torn last line from a crash: ignore
    }
  }
}

/** Handlers that write and/or POST each event once, in arrival order. */
export async function jsonlHooks(
  opts: JsonlHooksOptions,
): Promise<PluginHandlers<Hooks>> {
  const window = opts.dedup_window ?? 10_000;
  const written = new RecentKeys(window);
  const posted = new RecentKeys(window);
  const timeoutMs = opts.webhook_timeout_ms ?? 5000;
  const file = opts.file === null ? null : absolutePath(opts.file);
  if (file !== null) await keysInFile(file, written);
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.catch(() => {});
    return run;
  };
  const encoder = new TextEncoder();

  const append = async (ev: HookEvent) => {
    if (file === null || (ev.dedup_key && written.has(ev.dedup_key))) return;
    const f = await Deno.open(file, { append: true, create: true });
    try {
      await f.write(encoder.encode(JSON.stringify(eventRecord(ev)) + "\n"));
      if (ev.tier === "audit") await f.sync();
    } finally {
      f.close();
    }
    if (ev.dedup_key) written.add(ev.dedup_key);
  };

  const post = async (ev: HookEvent) => {
    if (opts.webhook_url === null) return;
    if (ev.dedup_key && posted.has(ev.dedup_key)) return;
    let res: Response;
    try {
      res = await fetch(opts.webhook_url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "idempotency-key": ev.dedup_key,
        },
        body: JSON.stringify(eventRecord(ev)),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel();
    } catch (e) {
      throw new PluginError(
        "UNAVAILABLE",
        `webhook: ${(e as Error).message}`,
      );
    }
    if (!res.ok) {
      throw new PluginError("UNAVAILABLE", `webhook answered ${res.status}`);
    }
    if (ev.dedup_key) posted.add(ev.dedup_key);
  };

  return {
    onEvent: (ev): Promise<HookAck> =>
      serial(async () => {
        await append(ev);
        await post(ev);
        return { acked_seq: ev.seq };
      }),
  };
}

if (import.meta.main) {
  const webhook_url = Deno.env.get("BOI_HOOKS_WEBHOOK_URL") || null;
  const file = Deno.env.get("BOI_HOOKS_FILE") ||
    (webhook_url === null ? `${pluginEnv().data_dir}/events.jsonl` : null);
  pluginLogger("hooks_jsonl").info("sinks", { file, webhook_url });
  await servePlugin({
    kind: "hooks",
    name: "hooks_jsonl",
    version: "1.0.0",
    capabilities: ["dedup"],
    ...await jsonlHooks({
      file,
      webhook_url,
      webhook_timeout_ms: Number(
        Deno.env.get("BOI_HOOKS_WEBHOOK_TIMEOUT_MS") || 5000,
      ),
    }),
  });
}
