/**
 * Core's end of the `spec_cache` capability (spec_cache_wire.ts): what it has
 * sent in full to one workspace plugin connection, so later Prepares of the
 * same spec carry a digest instead of the YAML.
 *
 * What core remembers belongs to one connection and one Handshake: every
 * plugin incarnation gets a new connection (so a restart starts empty), and a
 * new Handshake on a connection (a reconnect) forgets it too. A plugin can
 * still lose its cache behind core's back (evicted, or a sidecar restarted
 * under the same socket): it answers the retryable miss and core resends that
 * Prepare in full, once.
 * @module
 */
import { CODECS, type MethodCodec } from "./grpc_codec.ts";
import type { PrepareRequest, PrepareResponse } from "./contracts.ts";
import type { PluginConnection } from "./grpc_client.ts";
import { Lru } from "./lru.ts";
import {
  isSpecCacheMiss,
  PREPARE_WIRE,
  type PrepareWire,
  SPEC_CACHE_CAPABILITY,
  specDigest,
} from "./spec_cache_wire.ts";

/** Sends one Prepare with `codec` over the connection (deadline and corr id are the caller's). */
export type PrepareCall = <R>(
  codec: MethodCodec<R, PrepareResponse>,
  req: R,
) => Promise<PrepareResponse>;

/** A spec core has sent in full (or is sending) on this connection. */
interface Sent {
  yaml: string;
  digest: string;
}

/** Counters of one session, for tests and debugging. */
export interface SpecCacheStats {
  /** Prepares that carried the YAML. */
  full: number;
  /** Prepares that carried only the digest. */
  cached: number;
  /** Misses answered by the plugin (each followed by one full resend). */
  misses: number;
}

/**
 * What one connection has been sent, bounded: past `max_specs` the least
 * recently prepared spec is forgotten and goes in full again next time.
 */
export class SpecCacheSession {
  readonly #sent: Lru<string, Sent>;
  readonly stats: SpecCacheStats = { full: 0, cached: 0, misses: 0 };

  constructor(max_specs: number) {
    this.#sent = new Lru({ max: max_specs });
  }

  /**
   * Sends `req` through `call`: as a digest when this spec's YAML (the same
   * text) was sent before, else in full. A miss forgets the spec and resends
   * in full once; any other error is the caller's.
   */
  async prepare(
    req: PrepareRequest,
    call: (w: PrepareWire) => Promise<PrepareResponse>,
  ): Promise<PrepareResponse> {
    let sent = this.#sent.get(req.spec_id);
    // String equality: the same text, even when the view decoded it anew.
    if (sent !== undefined && sent.yaml !== req.spec_yaml) sent = undefined;
    if (sent !== undefined) {
      this.stats.cached++;
      try {
        return await call({
          ...req,
          spec_yaml: "",
          spec_digest: sent.digest,
          spec_yaml_cached: true,
        });
      } catch (e) {
        if (!isSpecCacheMiss(e)) throw e;
        this.stats.misses++;
        if (this.#sent.peek(req.spec_id) === sent) {
          this.#sent.delete(req.spec_id);
        }
      }
    }
    const entry: Sent = {
      yaml: req.spec_yaml,
      digest: sent?.digest ?? specDigest(req.spec_yaml),
    };
    // Remembered as it is sent: Prepares of the same spec right behind this
    // one go as digests. Should they overtake it, they miss and resend.
    this.#sent.set(req.spec_id, entry);
    this.stats.full++;
    try {
      return await call({
        ...req,
        spec_digest: entry.digest,
        spec_yaml_cached: false,
      });
    } catch (e) {
      // The plugin may not hold it: the next Prepare sends it again.
      if (this.#sent.peek(req.spec_id) === entry) {
        this.#sent.delete(req.spec_id);
      }
      throw e;
    }
  }
}

/** Sessions by connection; each is valid for the Handshake it was made under. */
const sessions = new WeakMap<
  PluginConnection,
  { handshake: readonly string[]; session: SpecCacheSession }
>();

/**
 * The connection's session when both sides announced `spec_cache` at its
 * latest Handshake, else null (a 1.0 plugin: the YAML goes every time).
 */
export function specCacheSession(
  conn: PluginConnection,
  max_specs: number,
): SpecCacheSession | null {
  const negotiated = conn.negotiated;
  if (!negotiated.includes(SPEC_CACHE_CAPABILITY)) return null;
  const s = sessions.get(conn);
  // A new Handshake makes a new array: what was sent before is forgotten.
  if (s !== undefined && s.handshake === negotiated) return s.session;
  const session = new SpecCacheSession(max_specs);
  sessions.set(conn, { handshake: negotiated, session });
  return session;
}

/** Prepare over `conn`: through its spec cache session when it has one, plain otherwise. */
export function prepareWithSpecCache(
  conn: PluginConnection,
  req: PrepareRequest,
  max_specs: number,
  call: PrepareCall,
): Promise<PrepareResponse> {
  const session = specCacheSession(conn, max_specs);
  if (session === null) return call(CODECS.workspace.prepare, req);
  return session.prepare(req, (w) => call(PREPARE_WIRE, w));
}
