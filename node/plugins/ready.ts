/**
 * Ready and handshake (SPEC §7): an incarnation is up once it announces it
 * serves (`BOI_READY` within `ready_timeout_s`) and answers Handshake. Core
 * sends its version and protocol; it refuses another major and accepts a
 * newer minor with a warning.
 * @module
 */
import { PROTO_MAJOR, PROTO_MINOR } from "../../proto/mod.ts";
import { CORE_CAPABILITIES, PluginConnection } from "../exec/grpc_client.ts";
import type { PluginKind } from "../../proto/mod.ts";
import type { HandshakeResponse } from "./contracts.ts";
import { type PluginEndpoint, timer } from "./plugin_process.ts";

/** Core's verdict on a handshake answer. */
export type HandshakeVerdict =
  | { kind: "ready"; warnings: string[] }
  | { kind: "refused"; reason: string };

/** Judges a plugin's answer against core's protocol; pure. */
export function judgeHandshake(hs: HandshakeResponse): HandshakeVerdict {
  if (hs.proto_major !== PROTO_MAJOR) {
    return {
      kind: "refused",
      reason:
        `proto_version_mismatch: plugin ${hs.proto_major}.${hs.proto_minor}, core ${PROTO_MAJOR}.${PROTO_MINOR}`,
    };
  }
  const warnings = hs.proto_minor > PROTO_MINOR
    ? [
      `plugin speaks proto ${hs.proto_major}.${hs.proto_minor}, newer than core's ${PROTO_MAJOR}.${PROTO_MINOR}: newer calls are unused`,
    ]
    : [];
  return { kind: "ready", warnings };
}

/** What a handshake attempt came to. */
export type HandshakeOutcome =
  | { kind: "answer"; hs: HandshakeResponse }
  | { kind: "failed"; reason: string }
  | { kind: "ended"; how: string }
  | { kind: "wake" };

/**
 * Calls Handshake with a deadline, cut short when the plugin ends or the
 * supervisor is woken (stop/restart).
 */
export async function callHandshake(
  conn: PluginConnection,
  o: {
    core_version: string;
    timeout_ms: number;
    corr_id: string;
    ended: Promise<string>;
    wake: Promise<"wake">;
  },
): Promise<HandshakeOutcome> {
  try {
    const r = await Promise.race([
      conn.handshake({
        core_version: o.core_version,
        proto_major: PROTO_MAJOR,
        proto_minor: PROTO_MINOR,
        capabilities: [...CORE_CAPABILITIES],
      }, { timeout_ms: o.timeout_ms, corr_id: o.corr_id }).then((hs) => ({
        kind: "answer" as const,
        hs,
      })),
      o.ended.then((how) => ({ kind: "ended" as const, how })),
      o.wake.then(() => ({ kind: "wake" as const })),
    ]);
    return r;
  } catch (e) {
    return { kind: "failed", reason: `handshake: ${(e as Error).message}` };
  }
}

/** How bringing an incarnation up went. */
export type BringUp =
  | { kind: "answer"; conn: PluginConnection; hs: HandshakeResponse }
  | { kind: "failed"; reason: string; conn: PluginConnection | null }
  | { kind: "wake"; conn: PluginConnection | null };

/**
 * Waits for the endpoint to serve (at most `ready_timeout_ms`), then opens a
 * channel to `socket` and calls Handshake. Cut short by stop/restart.
 */
export async function bringUp(ep: PluginEndpoint, o: {
  kind: PluginKind;
  socket: string;
  ready_timeout_ms: number;
  handshake_timeout_ms: number;
  core_version: string;
  corr_id: string;
  wake: Promise<"wake">;
}): Promise<BringUp> {
  const t = timer(o.ready_timeout_ms);
  const r = await Promise.race([
    ep.ready.then((why) => ({ why })),
    ep.ended.then((how) => ({ how })),
    t.promise,
    o.wake,
  ]);
  t.clear();
  if (r === "wake") return { kind: "wake", conn: null };
  if (r === "timer") {
    return {
      kind: "failed",
      reason: `ready_timeout after ${o.ready_timeout_ms} ms${
        ep.readyDetail ? `: ${ep.readyDetail}` : ""
      }`,
      conn: null,
    };
  }
  if ("how" in r) {
    return {
      kind: "failed",
      reason: `exited before BOI_READY: ${r.how}`,
      conn: null,
    };
  }
  if (r.why !== null) return { kind: "failed", reason: r.why, conn: null };

  const conn = new PluginConnection(o.kind, o.socket);
  const hs = await callHandshake(conn, {
    core_version: o.core_version,
    timeout_ms: o.handshake_timeout_ms,
    corr_id: o.corr_id,
    ended: ep.ended,
    wake: o.wake,
  });
  if (hs.kind === "wake") return { kind: "wake", conn };
  if (hs.kind === "failed") return { ...hs, conn };
  if (hs.kind === "ended") {
    return {
      kind: "failed",
      reason: `exited during handshake: ${hs.how}`,
      conn,
    };
  }
  return { kind: "answer", conn, hs: hs.hs };
}
