/**
 * The early etcd probe of `dispatch`. Loading the CLI takes ~0.6 s on an
 * idle machine (most of it the etcd client library) and more on a busy one,
 * and the main thread makes no I/O progress meanwhile; so `cli.ts` starts
 * this probe first, in a worker thread, and `dispatch` takes its verdict when
 * it is ready to write: a partitioned etcd is refused within ~1.5 s of
 * starting, process start included.
 *
 * The worker asks etcd's HTTP gateway (`POST /v3/kv/range`, served on the
 * client port) for a serializable count of one key: the member answers it
 * alone, no consensus round. This module must stay light: no etcd client.
 */
import type { EarlyVerdict } from "./early_probe_lib.ts";

export type { EarlyVerdict } from "./early_probe_lib.ts";

/** How long the worker waits for an answer, measured on its own thread. */
export const EARLY_PROBE_TIMEOUT_MS = 1200;
/** If the worker has said nothing this long after being asked, use the gRPC probe. */
export const EARLY_PROBE_SAFETY_MS = 3000;

const DEFAULT_ENDPOINT = "http://127.0.0.1:2379";

let started: {
  endpoints: string[];
  verdict: Promise<EarlyVerdict>;
  worker: Worker;
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

/** Called by `cli.ts` first thing: starts the probe when the command is `dispatch`. */
export function startEarlyProbe(
  args: string[],
  env: (name: string) => string | undefined,
  timeoutMs = EARLY_PROBE_TIMEOUT_MS,
): void {
  if (args[0] !== "dispatch") return;
  const endpoints = httpEndpoints(endpointsArg(args, env));
  if (endpoints === null) return;
  let worker: Worker;
  try {
    worker = new Worker(new URL("./early_probe_worker.ts", import.meta.url), {
      type: "module",
    });
  } catch {
    return; // no worker, no early probe: dispatch uses the gRPC probe
  }
  const verdict = new Promise<EarlyVerdict>((resolve) => {
    worker.onmessage = (e: MessageEvent<EarlyVerdict>) => resolve(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      resolve({ kind: "unknown" });
    };
    worker.onmessageerror = () => resolve({ kind: "unknown" });
  });
  worker.postMessage({ endpoints, timeoutMs });
  started = { endpoints, verdict, worker };
}

/**
 * The early probe's verdict, if one was started for exactly these endpoints
 * (null otherwise). A worker silent for `safetyMs` gives `unknown`.
 */
export async function takeEarlyProbe(
  endpoints: string[],
  safetyMs = EARLY_PROBE_SAFETY_MS,
): Promise<EarlyVerdict | null> {
  const s = started;
  started = null;
  if (s === null) return null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    if (s.endpoints.join(",") !== endpoints.join(",")) return null;
    const silent = new Promise<EarlyVerdict>((resolve) => {
      timer = setTimeout(() => resolve({ kind: "unknown" }), safetyMs);
    });
    return await Promise.race([s.verdict, silent]);
  } finally {
    clearTimeout(timer);
    s.worker.terminate();
  }
}
