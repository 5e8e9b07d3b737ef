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
import { CODECS, type MethodCodec, WireError } from "./grpc_codec.ts";
import type { PrepareRequest, PrepareResponse } from "./contracts.ts";

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

/** A Prepare as it crosses the wire to a plugin that announced `spec_cache`. */
export interface PrepareWire extends PrepareRequest {
  /** Hex SHA-256 of the spec's YAML ("" from a core that does not cache). */
  spec_digest: string;
  /** `spec_yaml` was left out: restore it by (spec_id, spec_digest). */
  spec_yaml_cached: boolean;
}

/** The digest `spec_digest` carries: hex SHA-256 of the YAML's UTF-8 bytes. */
export function specDigest(yaml: string): string {
  return createHash("sha256").update(yaml).digest("hex");
}

const base = CODECS.workspace.prepare;

/** Prepare with the two `spec_cache` fields; the response is the contract's. */
export const PREPARE_WIRE: MethodCodec<PrepareWire, PrepareResponse> = {
  ...base,
  encodeRequest: (r) => ({ ...r }),
  decodeRequest: (w) => {
    const d = w.spec_digest ?? "";
    const c = w.spec_yaml_cached ?? false;
    if (typeof d !== "string") {
      throw new WireError("spec_digest: expected a string");
    }
    if (typeof c !== "boolean") {
      throw new WireError("spec_yaml_cached: expected a boolean");
    }
    if (c && d === "") {
      throw new WireError("spec_yaml_cached: set without a spec_digest");
    }
    return { ...base.decodeRequest(w), spec_digest: d, spec_yaml_cached: c };
  },
};

/** True when `e` is a plugin's answer that it does not hold the spec meant. */
export function isSpecCacheMiss(e: unknown): boolean {
  const x = e as { code?: unknown; details?: unknown } | null;
  return typeof x?.code === "number" && x.code === SPEC_CACHE_MISS_CODE &&
    typeof x.details === "string" && x.details.startsWith(SPEC_CACHE_MISS);
}
