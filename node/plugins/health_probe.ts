/**
 * The health probe (SPEC §7): `Health` every interval; a number of failures
 * in a row (error, timeout, `ok: false`) makes the plugin unhealthy.
 * @module
 */
import type { PluginConnection } from "../exec/grpc_client.ts";
import { timer } from "./plugin_process.ts";
import type { SupervisorLog } from "./supervisor_types.ts";

/** Options of {@linkcode probeHealth}. */
export interface ProbeOptions {
  interval_ms: number;
  /** Deadline of one probe (at most the interval). */
  timeout_ms: number;
  /** Failures in a row that make it unhealthy. */
  failures: number;
  /** Corr id of each probe. */
  corr_id: string;
  /** Resolves when the process ends (never, when attached). */
  ended: Promise<string>;
  /** Resolves on stop/restart. */
  wake: Promise<"wake">;
  /**
   * Checked before each probe: why the plugin is gone without an exit we can
   * see (attach mode: its socket vanished or was replaced), else null.
   * @default none
   */
  gone?: () => Promise<string | null>;
  /**
   * Whether a probe error means the plugin is gone rather than sick (attach
   * mode: nothing accepts on the socket).
   * @default never
   */
  lost?: (error: Error) => boolean;
  log: SupervisorLog;
}

/** How serving ended. */
export type ProbeEnd =
  | { kind: "exit" | "unhealthy"; reason: string }
  | { kind: "wake" };

/** Probes until the plugin ends, turns unhealthy, or the supervisor is woken. */
export async function probeHealth(
  conn: PluginConnection,
  o: ProbeOptions,
): Promise<ProbeEnd> {
  const timeoutMs = Math.min(o.timeout_ms, o.interval_ms);
  const ended = o.ended.then((how) => ({ how }));
  let failures = 0;
  for (;;) {
    const t = timer(o.interval_ms);
    const r = await Promise.race([t.promise, ended, o.wake]);
    t.clear();
    if (r === "wake") return { kind: "wake" };
    if (r !== "timer") return { kind: "exit", reason: `exited: ${r.how}` };
    const gone = await o.gone?.();
    if (gone) return { kind: "exit", reason: gone };
    const probe = conn.health({ timeout_ms: timeoutMs, corr_id: o.corr_id })
      .then(
        (h) => h.ok ? null : { problem: `not ok: ${h.detail}`, lost: false },
        (e: Error) => ({ problem: e.message, lost: o.lost?.(e) ?? false }),
      );
    const p = await Promise.race([probe, ended, o.wake]);
    if (p === "wake") return { kind: "wake" };
    if (p !== null && "how" in p) {
      return { kind: "exit", reason: `exited: ${p.how}` };
    }
    if (p === null) {
      failures = 0;
      continue;
    }
    if (p.lost) {
      return { kind: "exit", reason: `connection lost: ${p.problem}` };
    }
    failures++;
    o.log.log("warn", "plugin health probe failed", {
      failures,
      problem: p.problem,
    });
    if (failures >= o.failures) {
      return {
        kind: "unhealthy",
        reason: `${failures} health probes failed in a row; last: ${p.problem}`,
      };
    }
  }
}
