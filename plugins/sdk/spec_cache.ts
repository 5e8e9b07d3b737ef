/**
 * The SDK's end of the `spec_cache` capability (node/exec/spec_cache_wire.ts):
 * a workspace plugin announces it, core then sends each spec's YAML once and
 * a digest after that, and this puts the YAML back before the plugin's
 * `prepare` handler runs, so a handler sees the full `spec_yaml` on every call
 * whatever the wire carried.
 * @module
 */
import type { MethodCodec } from "../../node/exec/grpc_codec.ts";
import { Lru } from "../../node/exec/lru.ts";
import {
  PREPARE_WIRE,
  type PrepareWire,
  SPEC_CACHE_MISS,
} from "../../node/exec/spec_cache_wire.ts";
import type { PrepareRequest } from "../../node/exec/contracts.ts";
import type { Route } from "./dispatch.ts";
import { PluginError } from "./errors.ts";

/** Bounds of the SDK's spec cache (`servePlugin`'s `spec_cache` option). */
export interface SpecCacheOptions {
  /**
   * At most this many specs' YAML, least recently prepared evicted first.
   * @default 64
   */
  specs?: number;
  /**
   * At most this many bytes of YAML in all (UTF-16 code units, as held);
   * the newest spec is kept even if larger.
   * @default 67108864 (64 MiB)
   */
  bytes?: number;
}

interface Held {
  digest: string;
  yaml: string;
}

/** The YAML of the specs core sent in full, by spec id. */
export class SpecCache {
  readonly #lru: Lru<string, Held>;

  constructor(options: SpecCacheOptions = {}) {
    this.#lru = new Lru({
      max: options.specs ?? 64,
      maxWeight: options.bytes ?? 64 * 1024 * 1024,
      weight: (h) => h.yaml.length,
    });
  }

  /**
   * The request as the handler sees it: a full one is remembered (when core
   * sent a digest) and passed on; a cached one gets its YAML back, or throws
   * the retryable miss core answers by resending in full.
   */
  restore(w: PrepareWire): PrepareRequest {
    const { spec_digest, spec_yaml_cached, ...req } = w;
    if (!spec_yaml_cached) {
      if (spec_digest !== "") {
        this.#lru.set(req.spec_id, {
          digest: spec_digest,
          yaml: req.spec_yaml,
        });
      }
      return req;
    }
    const held = this.#lru.get(req.spec_id);
    if (held === undefined || held.digest !== spec_digest) {
      throw new PluginError(
        "FAILED_PRECONDITION",
        `${SPEC_CACHE_MISS}: spec ${req.spec_id} with digest ${spec_digest} is not in this plugin's cache (${
          held === undefined
            ? "evicted, or this process is new"
            : "another digest held"
        }); send spec_yaml in full`,
      );
    }
    return { ...req, spec_yaml: held.yaml };
  }

  /** Specs held, least recently used first (for tests). */
  specs(): string[] {
    return this.#lru.keys();
  }
}

/** The Prepare route with the spec cache in front of the plugin's handler. */
export function specCacheRoute(prepare: Route, cache: SpecCache): Route {
  return {
    codec: PREPARE_WIRE as MethodCodec<unknown, unknown>,
    handler: (req, ctx) =>
      prepare.handler(cache.restore(req as PrepareWire), ctx),
  };
}
