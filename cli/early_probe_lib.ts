/**
 * The probe itself, shared by the worker and its tests: light on purpose (no
 * etcd client, no zod), since it runs while the CLI is still loading.
 */

/** What the early probe found. `unknown`: no gateway, or no plain HTTP; use the gRPC probe. */
export type EarlyVerdict =
  | { kind: "ok" }
  | { kind: "unreachable"; reason: string }
  | { kind: "unknown" };

/** One endpoint's gateway: ok, unreachable (with a short reason), or unknown. */
export async function probeOne(
  endpoint: string,
  timeoutMs: number,
): Promise<EarlyVerdict> {
  try {
    const res = await fetch(`${endpoint}/v3/kv/range`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"key":"AA==","count_only":true,"serializable":true}',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    return res.ok ? { kind: "ok" } : { kind: "unknown" };
  } catch (err) {
    const reason = fetchFailure(err as Error, timeoutMs);
    return reason === null
      ? { kind: "unknown" }
      : { kind: "unreachable", reason };
  }
}

/**
 * Why a fetch to etcd failed, in a few words ("connection refused", "no
 * answer within 1.2s"); null when Deno refused the port itself (the fetch
 * spec's "bad ports": no verdict on etcd).
 */
export function fetchFailure(e: Error, timeoutMs: number): string | null {
  if (e.name === "TimeoutError") {
    return `no answer within ${(timeoutMs / 1000).toFixed(1)}s`;
  }
  if (/are blocked/.test(e.message)) return null;
  // "fetch failed"; the cause says why ("… Connection refused (os error 111)").
  const msg = `${e.message} ${e.cause instanceof Error ? e.cause.message : ""}`;
  const m =
    /(Connection refused|Connection reset[^(]*|No route to host|Network is unreachable|dns error[^)]*)/i
      .exec(msg);
  return m ? m[1].trim().toLowerCase() : msg.trim().split("\n")[0];
}

/** Any endpoint answering is enough; unreachable only when none does. */
export async function probeAll(
  endpoints: string[],
  timeoutMs: number,
): Promise<EarlyVerdict> {
  const results = await Promise.all(
    endpoints.map((e) => probeOne(e, timeoutMs)),
  );
  if (results.some((r) => r.kind === "ok")) return { kind: "ok" };
  if (results.some((r) => r.kind === "unknown")) return { kind: "unknown" };
  const reasons = [
    ...new Set(results.map((r) => r.kind === "unreachable" ? r.reason : "")),
  ];
  return { kind: "unreachable", reason: reasons.join("; ") };
}
