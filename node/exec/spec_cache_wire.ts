/**
 * The `spec_cache` capability's wire form (proto minor 1,
 * `workspace.proto`): shared by core (spec_cache_client.ts) and the SDK
 * (plugins/sdk/spec_cache.ts), so both read one definition.
 *
 * Without it every Prepare carries the whole spec YAML, O(spec size) bytes to
 * frame, send and decode per task. With it, core sends a spec's YAML once per
 * plugin connection and spec; later Prepares of that spec leave `spec_yaml`
 * empty and set `spec_yaml_cached`, and the SDK puts the YAML back before the
 * plugin's `prepare` handler runs. `spec_digest` (SHA-256 of the YAML, set on
 * both forms) names which YAML is meant, so a spec id dispatched again with
 * other content, or a cache shared by two cores, can never hand a handler the
 * wrong YAML: a digest the SDK does not hold is a miss. An empty
 * `spec_yaml` with `spec_yaml_cached` false is a spec whose YAML is empty.
 * @module
 */
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { SERVICE_DEFINITIONS } from "../../proto/mod.ts";
import type * as ws from "../../proto/gen/boi/workspace/v1/workspace.ts";
import {
  CODECS,
  decodeMessage,
  encodeMessage,
  type MethodCodec,
  WireError,
} from "./grpc_codec.ts";
import type { PrepareResponse } from "./contracts.ts";

/** Announced at Handshake by both sides; core uses it only with workspace plugins. */
export const SPEC_CACHE_CAPABILITY = "spec_cache";

/**
 * How a miss is answered: FAILED_PRECONDITION with details starting with
 * this. Core then resends that Prepare once in full; it is never a task's
 * failure.
 */
export const SPEC_CACHE_MISS = "spec_cache_miss";
/** The gRPC status of a miss. */
export const SPEC_CACHE_MISS_CODE: number = grpc.status.FAILED_PRECONDITION;

/**
 * A Prepare as it crosses the wire to a plugin that announced `spec_cache`:
 * the generated message, with `spec_digest` (hex SHA-256 of the spec's YAML,
 * "" from a core that does not cache) and `spec_yaml_cached` (`spec_yaml`
 * was left out: restore it by spec_id and digest).
 */
export type PrepareWire = ws.PrepareRequest;

/** The digest `spec_digest` carries: hex SHA-256 of the YAML's UTF-8 bytes. */
export function specDigest(yaml: string): string {
  return createHash("sha256").update(yaml).digest("hex");
}

const base = CODECS.workspace.prepare;
const { prepare } = SERVICE_DEFINITIONS.workspace.methods;
const site = {
  service: SERVICE_DEFINITIONS.workspace.fullName,
  rpc: prepare.name,
  side: "request",
} as const;

/** Prepare with the two `spec_cache` fields; the response is the contract's. */
export const PREPARE_WIRE: MethodCodec<PrepareWire, PrepareResponse> = {
  ...base,
  encodeRequest: (r) => encodeMessage(prepare.requestType, r),
  decodeRequest: (w) => {
    const r = decodeMessage(prepare.requestType, w, site);
    if (r.spec_yaml_cached && r.spec_digest === "") {
      throw new WireError(
        "PrepareRequest.spec_yaml_cached: set without a spec_digest",
      );
    }
    return r;
  },
};

/** True when `e` is a plugin's answer that it does not hold the spec meant. */
export function isSpecCacheMiss(e: unknown): boolean {
  const x = e as { code?: unknown; details?: unknown } | null;
  return typeof x?.code === "number" && x.code === SPEC_CACHE_MISS_CODE &&
    typeof x.details === "string" && x.details.startsWith(SPEC_CACHE_MISS);
}
