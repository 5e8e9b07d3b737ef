/**
 * Talking to the local node's HTTP when etcd cannot be reached (SPEC §6):
 * report a rejected dispatch so the node counts it, and fetch the node's
 * cached view for `status --stale-ok`. Both are best effort with short
 * timeouts; nothing here touches etcd.
 */
import { Option } from "@commander-js/extra-typings";
import { z } from "zod";
import { Envelope, TaskState } from "../node/schema.ts";
import type { Io } from "./context.ts";
import { CliError, EXIT } from "./errors.ts";
import { ADMIN_SECRET_HEADER } from "../node/admin_secret.ts";

/** The node the CLI asks when nothing is configured (the node's own default). */
export const DEFAULT_NODE_ADDR = "127.0.0.1:7001";
/** A report of a rejected dispatch must not delay the exit: give it this long. */
export const REPORT_TIMEOUT_MS = 300;
/** A node's cached view answers read-only questions for this long after its last etcd contact (SPEC §6). */
export const MEMBERSHIP_CACHE_TTL_S = 30;
/** How long `status --stale-ok` waits for the node's cached view. */
export const VIEW_TIMEOUT_MS = 1500;

/** `--node <host:port>`. */
export function nodeOption() {
  return new Option(
    "--node <host:port>",
    `the local node's HTTP address, asked while etcd is unreachable (default: $BOI_HTTP_ADDR or ${DEFAULT_NODE_ADDR})`,
  );
}

/**
 * The node's address: `--node` (a bad value is a usage error), else
 * `$BOI_HTTP_ADDR` (the node's own setting; ignored when malformed, as the
 * node would refuse it), else the default.
 */
export function nodeAddr(io: Io, opt: string | undefined): string {
  if (opt !== undefined) {
    const addr = parseAddr(opt);
    if (addr === null) {
      throw new CliError(
        `--node must be host:port like "${DEFAULT_NODE_ADDR}": got ${
          JSON.stringify(opt)
        }`,
        EXIT.usage,
      );
    }
    return addr;
  }
  return parseAddr(io.env("BOI_HTTP_ADDR") ?? "") ?? DEFAULT_NODE_ADDR;
}

function parseAddr(text: string): string | null {
  const m = /^([^:/\s]+|\[[^\]\s]+\]):(\d{1,5})$/.exec(text);
  if (m === null || Number(m[2]) > 65535 || Number(m[2]) === 0) return null;
  // A node listening on every interface is reached on loopback.
  const host = m[1] === "0.0.0.0"
    ? "127.0.0.1"
    : m[1] === "[::]"
    ? "[::1]"
    : m[1];
  return `${host}:${m[2]}`;
}

/**
 * Tells the node a dispatch was refused because etcd was unreachable, so it
 * counts `boi_dispatch_rejected_etcd_unreachable_total`. `secret` is the
 * local node's copy of the admin secret (etcd is down); without it the node
 * refuses. Never throws, never waits longer than `timeoutMs`.
 */
export async function reportDispatchRejected(
  addr: string,
  secret: string | null,
  timeoutMs = REPORT_TIMEOUT_MS,
  fetchFn: typeof fetch = fetch,
): Promise<boolean> {
  try {
    const res = await fetchFn(`http://${addr}/internal/dispatch-rejected`, {
      method: "POST",
      headers: secret === null ? {} : { [ADMIN_SECRET_HEADER]: secret },
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Fetches `GET /internal/view` (with `?spec=`); throws a one-line reason when no node answers. */
export async function fetchCachedView(
  addr: string,
  specId: string | undefined,
  timeoutMs = VIEW_TIMEOUT_MS,
  fetchFn: typeof fetch = fetch,
): Promise<CachedViewAnswer> {
  const url = `http://${addr}/internal/view${
    specId === undefined ? "" : `?spec=${encodeURIComponent(specId)}`
  }`;
  let res: Response;
  try {
    res = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error;
    const why = e.name === "TimeoutError"
      ? `no answer within ${timeoutMs} ms`
      : e.message.split("\n")[0].replace(/^error sending request[^:]*: /, "");
    throw new Error(why);
  }
  if (!res.ok) {
    const body = (await res.text().catch(() => "")).trim().slice(0, 200);
    throw new Error(`HTTP ${res.status}${body === "" ? "" : `: ${body}`}`);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new Error("answer is not JSON");
  }
  const parsed = CachedViewAnswer.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `answer is not a cached view: ${issue.path.join(".")}: ${issue.message}`,
    );
  }
  return parsed.data;
}

/** The part of a node's `GET /internal/view` answer the CLI relies on (validated). */
export const CachedViewAnswer = z.object({
  node_id: z.string(),
  generated_at: z.number(),
  etcd_up: z.boolean(),
  etcd_down_since: z.number().nullable(),
  cache_age_ms: z.number().nonnegative(),
  dispatch_paused: z.boolean(),
  pending_flush: z.number(),
  nodes: z.array(z.object({
    node_id: z.string(),
    addr: z.string(),
    caps: z.record(z.string(), z.string()),
    health: z.enum(["ok", "degraded"]).nullable(),
    workers_busy: z.number().nullable(),
    workers_max: z.number().nullable(),
    draining: z.boolean(),
  })),
  specs: z.array(z.object({
    spec_id: z.string(),
    dispatched_at: z.number(),
    counts: z.partialRecord(TaskState, z.number()),
  })),
  tasks: z.array(Envelope).optional(),
});
export type CachedViewAnswer = z.infer<typeof CachedViewAnswer>;
