/**
 * Reference hooks plugin: appends each event as a JSON line to
 * `BOI_HOOKS_FILE` and/or POSTs it to `BOI_HOOKS_WEBHOOK_URL`, then acks its
 * seq. With neither set it writes `<plugin data dir>/events.jsonl`. Replays
 * (same `dedup_key`) are acked without a second line or POST; audit-tier
 * lines are fsynced before the ack. Core keeps several calls open: the
 * events that queue while a batch is written share the next write and fsync
 * (hooks_jsonl_file.ts).
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
import { JsonlAppender, type OpenAppend } from "./hooks_jsonl_file.ts";

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
  /** How the file is opened (tests count writes). @default Deno.open */
  open?: OpenAppend;
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

/** One event waiting in the queue for its ack. */
interface Waiting {
  ev: HookEvent;
  done: PromiseWithResolvers<HookAck>;
  /** Set once it failed: it gets no ack, later steps skip it. */
  error?: unknown;
}

/**
 * Handlers that write and/or POST each event once, in arrival order.
 * Events that queue up while a batch is being written form the next batch:
 * one write and (if any is audit) one fsync for all its lines, before any
 * of them is acked; POSTs stay one per event, in order.
 */
export async function jsonlHooks(
  opts: JsonlHooksOptions,
): Promise<PluginHandlers<Hooks>> {
  const window = opts.dedup_window ?? 10_000;
  const written = new RecentKeys(window);
  const posted = new RecentKeys(window);
  const timeoutMs = opts.webhook_timeout_ms ?? 5000;
  const path = opts.file === null ? null : absolutePath(opts.file);
  if (path !== null) await keysInFile(path, written);
  const file = path === null ? null : new JsonlAppender(path, opts.open);
  // Audit order across failures: after seq k of an emitter failed, its later
  // audit events are refused until k is sent again (core resends from its
  // oldest unacked), so no later event lands before k.
  const failedAt = new Map<string, number>();
  const queue: Waiting[] = [];
  let draining = false;

  const append = async (batch: Waiting[]) => {
    if (file === null) return;
    const fresh = new Set<string>();
    let text = "";
    let sync = false;
    for (const w of batch) {
      const k = w.ev.dedup_key;
      if (k && (written.has(k) || fresh.has(k))) continue;
      if (k) fresh.add(k);
      text += JSON.stringify(eventRecord(w.ev)) + "\n";
      sync ||= w.ev.tier === "audit";
    }
    if (text === "") return;
    try {
      await file.append(text, sync);
    } catch (e) {
      for (const w of batch) w.error ??= e;
      return;
    }
    for (const k of fresh) written.add(k);
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

  /** Refuses an audit event behind a failed one of the same emitter. */
  const behindFailure = (w: Waiting, k: number | undefined) => {
    const { ev } = w;
    if (ev.tier !== "audit" || k === undefined || ev.seq <= k) return false;
    w.error = new PluginError(
      "UNAVAILABLE",
      `seq ${k} failed: waiting for it before seq ${ev.seq}`,
    );
    return true;
  };

  const handle = async (batch: Waiting[]) => {
    // An event behind a failed one waits, unless that one comes again
    // earlier in this batch (a resend from it).
    const pass = new Map(failedAt);
    const live: Waiting[] = [];
    for (const w of batch) {
      const { ev } = w;
      if (behindFailure(w, pass.get(ev.emitter_node_id))) continue;
      if (pass.get(ev.emitter_node_id) === ev.seq) {
        pass.delete(ev.emitter_node_id);
      }
      live.push(w);
    }
    await append(live);
    for (const w of live) {
      const { ev } = w;
      const k = failedAt.get(ev.emitter_node_id);
      if (w.error === undefined && !behindFailure(w, k)) {
        try {
          await post(ev);
        } catch (e) {
          w.error = e;
        }
      }
      if (ev.tier !== "audit") continue;
      if (w.error !== undefined) {
        failedAt.set(ev.emitter_node_id, Math.min(k ?? ev.seq, ev.seq));
      } else if (k === ev.seq) failedAt.delete(ev.emitter_node_id);
    }
    for (const w of batch) {
      if (w.error === undefined) w.done.resolve({ acked_seq: w.ev.seq });
      else w.done.reject(w.error);
    }
  };

  const drain = async () => {
    draining = true;
    try {
      // One turn first: the calls of one transport batch arrive together.
      await Promise.resolve();
      while (queue.length > 0) await handle(queue.splice(0));
    } finally {
      draining = false;
    }
  };

  return {
    onEvent: (ev): Promise<HookAck> => {
      const w: Waiting = { ev, done: Promise.withResolvers<HookAck>() };
      queue.push(w);
      if (!draining) void drain();
      return w.done.promise;
    },
  };
}

/** The sinks `BOI_HOOKS_*` ask for, checked; throws one line naming the variable and the value. */
export function hooksSinksFromEnv(
  env: (k: string) => string | undefined,
  data_dir: string,
): Pick<JsonlHooksOptions, "file" | "webhook_url" | "webhook_timeout_ms"> {
  const webhook_url = env("BOI_HOOKS_WEBHOOK_URL") || null;
  if (webhook_url !== null && !/^https?:$/.test(urlProtocol(webhook_url))) {
    throw new Error(
      `BOI_HOOKS_WEBHOOK_URL must be an http:// or https:// URL: got ${
        JSON.stringify(webhook_url)
      }`,
    );
  }
  const rawTimeout = env("BOI_HOOKS_WEBHOOK_TIMEOUT_MS") || "5000";
  const webhook_timeout_ms = Number(rawTimeout);
  if (!Number.isInteger(webhook_timeout_ms) || webhook_timeout_ms <= 0) {
    throw new Error(
      `BOI_HOOKS_WEBHOOK_TIMEOUT_MS must be a positive whole number of milliseconds: got ${
        JSON.stringify(rawTimeout)
      }`,
    );
  }
  const file = env("BOI_HOOKS_FILE") ||
    (webhook_url === null ? `${data_dir}/events.jsonl` : null);
  return { file, webhook_url, webhook_timeout_ms };
}

/** The scheme of `u` (`"http:"`), or "" when it is not a URL. */
function urlProtocol(u: string): string {
  try {
    return new URL(u).protocol;
  } catch {
    return "";
  }
}

if (import.meta.main) {
  let sinks: ReturnType<typeof hooksSinksFromEnv>;
  try {
    sinks = hooksSinksFromEnv((k) => Deno.env.get(k), pluginEnv().data_dir);
  } catch (e) {
    console.error(`hooks_jsonl: ${(e as Error).message}`);
    Deno.exit(2);
  }
  pluginLogger("hooks_jsonl").info("sinks", {
    file: sinks.file,
    webhook_url: sinks.webhook_url,
  });
  await servePlugin({
    kind: "hooks",
    name: "hooks_jsonl",
    version: "1.0.0",
    capabilities: ["dedup"],
    ...await jsonlHooks(sinks),
  });
}
