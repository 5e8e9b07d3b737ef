/**
 * The early etcd probe of `dispatch`. Loading the CLI takes ~0.6 s on an
 * idle machine (most of it the etcd client library) and more on a busy one;
 * `cli.ts` starts this probe before loading the rest, so an unreachable etcd
 * is known by the time `dispatch` is ready to write, and a refusal comes
 * within ~1–2 s of starting, process start included.
 *
 * It asks etcd's HTTP gateway (`POST /v3/kv/range`, served on the client
 * port) for a serializable count of one key: the member answers it alone, no
 * consensus round. This module must stay light: no etcd client, no zod.
 */

/** What the early probe found. `unknown`: no gateway or not plain HTTP; use the gRPC probe. */
export type EarlyVerdict =
  | { kind: "ok" }
  | { kind: "unreachable"; reason: string }
  | { kind: "unknown" };

/** How long after its start the early probe may take to answer. */
export const EARLY_PROBE_TIMEOUT_MS = 1000;
/**
 * Once the CLI is ready it still waits at least this long, so an answer
 * that arrived while the thread was busy loading is read before the
 * deadline is declared missed.
 */
export const EARLY_PROBE_GRACE_MS = 150;

const DEFAULT_ENDPOINT = "http://127.0.0.1:2379";

let started: {
  endpoints: string[];
  verdict: Promise<EarlyVerdict>;
  at: number;
  abort: AbortController;
} | null = null;

/** `--etcd` as commander would see it (`--etcd X` or `--etcd=X`), else the environment, else the default. */
export function endpointsArg(
  args: string[],
  env: (name: string) => string | undefined,
): string {
  for (let i = 1; i < args.length; i++) {
    if (args[i] === "--") break;
    if (args[i] === "--etcd" && i + 1 < args.length) return args[i + 1];
    if (args[i].startsWith("--etcd=")) return args[i].slice("--etcd=".length);
  }
  return env("BOI_ETCD_ENDPOINTS") ?? DEFAULT_ENDPOINT;
}

/** Plain-HTTP endpoints as `http://host:port`, or null if any is not one (then there is no early probe). */
export function httpEndpoints(text: string): string[] | null {
  const list = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (list.length === 0) return null;
  const out: string[] = [];
  for (const e of list) {
    let url: URL;
    try {
      url = new URL(e.includes("://") ? e : `http://${e}`);
    } catch {
      return null;
    }
    if (url.protocol !== "http:" || url.port === "") return null;
    out.push(`${url.protocol}//${url.host}`);
  }
  return out;
}

/**
 * One endpoint: ok, unreachable (refused, with a short reason), or unknown.
 * No timeout here: while the rest of the CLI loads, the thread is busy and a
 * timer would fire before an answer that already arrived is read; the
 * deadline is applied by `takeEarlyProbe` once the CLI is ready.
 */
async function probeOne(
  endpoint: string,
  signal: AbortSignal,
): Promise<EarlyVerdict> {
  try {
    const res = await fetch(`${endpoint}/v3/kv/range`, {
      signal,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"key":"AA==","count_only":true,"serializable":true}',
    });
    await res.body?.cancel();
    return res.ok ? { kind: "ok" } : { kind: "unknown" };
  } catch (err) {
    const e = err as Error;
    // Deno refuses some ports outright (the fetch spec's "bad ports"): no verdict.
    if (/are blocked/.test(e.message)) return { kind: "unknown" };
    // "fetch failed"; the cause says why ("… Connection refused (os error 111)").
    const msg = `${e.message} ${
      e.cause instanceof Error ? e.cause.message : ""
    }`;
    const m =
      /(Connection refused|Connection reset[^(]*|No route to host|Network is unreachable|dns error[^)]*)/i
        .exec(msg);
    return {
      kind: "unreachable",
      reason: m ? m[1].trim().toLowerCase() : msg.trim().split("\n")[0],
    };
  }
}

/** Any endpoint answering is enough; unreachable only when none does. */
async function probeAll(
  endpoints: string[],
  signal: AbortSignal,
): Promise<EarlyVerdict> {
  const results = await Promise.all(
    endpoints.map((e) => probeOne(e, signal)),
  );
  if (results.some((r) => r.kind === "ok")) return { kind: "ok" };
  if (results.some((r) => r.kind === "unknown")) return { kind: "unknown" };
  const reasons = [
    ...new Set(results.map((r) => r.kind === "unreachable" ? r.reason : "")),
  ];
  return { kind: "unreachable", reason: reasons.join("; ") };
}

/** Called by `cli.ts` first thing: starts the probe when the command is `dispatch`. */
export function startEarlyProbe(
  args: string[],
  env: (name: string) => string | undefined,
): void {
  if (args[0] !== "dispatch") return;
  const endpoints = httpEndpoints(endpointsArg(args, env));
  if (endpoints === null) return;
  const abort = new AbortController();
  started = {
    endpoints,
    verdict: probeAll(endpoints, abort.signal),
    at: performance.now(),
    abort,
  };
}

/**
 * The early probe's verdict, if one was started for exactly these
 * endpoints: waits for it until `timeoutMs` after the probe started, but at
 * least `graceMs` from now; no answer by then is "unreachable".
 */
export async function takeEarlyProbe(
  endpoints: string[],
  timeoutMs = EARLY_PROBE_TIMEOUT_MS,
  graceMs = EARLY_PROBE_GRACE_MS,
): Promise<EarlyVerdict | null> {
  const s = started;
  started = null;
  if (s === null) return null;
  if (s.endpoints.join(",") !== endpoints.join(",")) {
    s.abort.abort();
    return null;
  }
  const wait = Math.max(graceMs, timeoutMs - (performance.now() - s.at));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<EarlyVerdict>((resolve) => {
    timer = setTimeout(() =>
      resolve({
        kind: "unreachable",
        reason: `no answer within ${
          ((performance.now() - s.at) / 1000).toFixed(1)
        }s`,
      }), wait);
  });
  try {
    return await Promise.race([s.verdict, late]);
  } finally {
    clearTimeout(timer);
    s.abort.abort(); // a probe still waiting is not needed any more
    await s.verdict; // settles at once after the abort
  }
}
