/**
 * Core's end of one plugin socket: unary and server-streaming calls carrying
 * `boi-corr-id`, plus the Handshake and Health every service has (SPEC §7).
 * The kind-specific clients (GrpcPool, GrpcWorkspace, …) sit on top.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { type PluginKind, pluginService } from "../../proto/mod.ts";
import { COMMON_CODECS, type MethodCodec, type Wire } from "./grpc_codec.ts";
import { MuxChannel } from "./mux_client.ts";
import { type CallSite, muxStream, muxUnary } from "./mux_calls.ts";
import { PluginCallError } from "./plugin_call_error.ts";
import { MUX_CAPABILITY, MUX_RPC } from "./mux_wire.ts";
import { SPEC_CACHE_CAPABILITY } from "./spec_cache_wire.ts";
import type {
  HandshakeRequest,
  HandshakeResponse,
  HealthResponse,
} from "../plugins/contracts.ts";
import { MAX_RECEIVE_BYTES } from "./mux_wire.ts";

export { PluginCallError };

/** Metadata key that carries the correlation id of every call. */
export const CORR_ID_KEY = "boi-corr-id";

/** A fresh correlation id, optionally prefixed (e.g. with the task id) for greppable logs. */
export function newCorrId(prefix?: string): string {
  const rand = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  return prefix ? `${prefix}.${rand}` : rand;
}

/** Per-call options. */
export interface CallOptions {
  /**
   * Sent as `boi-corr-id` metadata.
   * @default a fresh {@linkcode newCorrId}
   */
  corr_id?: string;
  /**
   * Deadline of a unary call; streams have none unless given.
   * @default the connection's `timeout_ms`
   */
  timeout_ms?: number;
  /** Cancels the call. */
  signal?: AbortSignal;
}

/** Options of {@linkcode PluginConnection}. */
export interface PluginConnectionOptions {
  /**
   * Default deadline of unary calls.
   * @default 30000
   */
  timeout_ms?: number;
}

/** The gRPC target for a Unix socket path. */
export function socketTarget(path: string): string {
  return path.startsWith("/") ? `unix://${path}` : `unix:${path}`;
}

/** How a connection carries calls: plain gRPC calls, or the Mux stream. */
export type Transport = "unary" | "mux";

/** What core announces at Handshake (proto minor ≥ 1). */
export const CORE_CAPABILITIES: readonly string[] = [
  MUX_CAPABILITY,
  SPEC_CACHE_CAPABILITY,
];

/**
 * One gRPC channel to one plugin's socket. Each plugin incarnation gets its
 * own, so a restart never waits out the previous channel's reconnect backoff.
 * Calls go over the Mux stream once Handshake found both sides announcing
 * `mux` (mux_client.ts), as plain RPCs otherwise; callers see no difference.
 */
export class PluginConnection {
  readonly #client: grpc.Client;
  readonly #definition: grpc.ServiceDefinition;
  readonly #timeoutMs: number;
  #mux: MuxChannel | null = null;
  #negotiated: readonly string[] = [];

  constructor(
    readonly kind: PluginKind,
    readonly socket: string,
    options: PluginConnectionOptions = {},
  ) {
    this.#definition = pluginService(kind).definition;
    this.#timeoutMs = options.timeout_ms ?? 30_000;
    this.#client = new grpc.Client(
      socketTarget(socket),
      grpc.credentials.createInsecure(),
      {
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
        "grpc.max_receive_message_length": MAX_RECEIVE_BYTES,
      },
    );
  }

  /** Resolves once the channel is connected; rejects after `timeout_ms`. */
  waitForReady(timeout_ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeout_ms, (err) => {
        if (err) {
          reject(
            new PluginCallError(
              this.kind,
              "connect",
              grpc.status.UNAVAILABLE,
              err.message,
              "",
            ),
          );
        } else resolve();
      });
    });
  }

  /**
   * Settles the protocol version; core judges the answer. Always a plain
   * call; when both sides announce `mux`, later calls use the Mux stream.
   */
  async handshake(
    req: HandshakeRequest,
    options?: CallOptions,
  ): Promise<HandshakeResponse> {
    const hs = await this.#plainUnary(COMMON_CODECS.handshake, req, options);
    this.#negotiated = hs.proto_minor >= 1
      ? req.capabilities.filter((c) => hs.capabilities.includes(c))
      : [];
    const both = req.capabilities.includes(MUX_CAPABILITY) &&
      hs.proto_minor >= 1 && hs.capabilities.includes(MUX_CAPABILITY);
    if (both && this.#mux === null && this.#definition[MUX_RPC]) {
      this.#mux = new MuxChannel(
        this.#client,
        this.#definition[MUX_RPC].path,
        newCorrId("mux"),
      );
    } else if (!both) {
      this.useUnary(); // a plugin that no longer announces it
    }
    return hs;
  }

  /**
   * The capabilities both sides announced at the latest Handshake ([] before
   * one, or with a 1.0 plugin); a new array per Handshake.
   */
  get negotiated(): readonly string[] {
    return this.#negotiated;
  }

  /** How calls travel now. */
  get transport(): Transport {
    return this.#mux ? "mux" : "unary";
  }

  /**
   * Goes back to plain calls (the conformance checks run every RPC over
   * both transports); calls already on the Mux stream finish there.
   */
  useUnary(): void {
    this.#mux?.close();
    this.#mux = null;
  }

  /** The periodic health probe (over the transport calls use, so it proves that one). */
  health(options?: CallOptions): Promise<HealthResponse> {
    return this.unary(COMMON_CODECS.health, {}, options);
  }

  /** Calls a unary RPC described by `codec`. */
  unary<Req, Res>(
    codec: MethodCodec<Req, Res>,
    req: Req,
    options: CallOptions = {},
  ): Promise<Res> {
    if (this.#mux) {
      return muxUnary(
        this.#mux,
        this.#callSite(codec),
        req,
        options.corr_id ?? newCorrId(),
        options.timeout_ms ?? this.#timeoutMs,
        options.signal,
      );
    }
    return this.#plainUnary(codec, req, options);
  }

  #plainUnary<Req, Res>(
    codec: MethodCodec<Req, Res>,
    req: Req,
    options: CallOptions = {},
  ): Promise<Res> {
    const { method, metadata, corr_id, callOptions } = this.#prepare(
      codec,
      options,
      options.timeout_ms ?? this.#timeoutMs,
    );
    return new Promise<Res>((resolve, reject) => {
      const call = this.#client.makeUnaryRequest<Wire, Wire>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        codec.encodeRequest(req),
        metadata,
        callOptions,
        (err, res) => {
          options.signal?.removeEventListener("abort", cancel);
          if (err) return reject(this.#error(codec.rpc, err, corr_id));
          try {
            resolve(codec.decodeResponse(res as Wire));
          } catch (e) {
            reject(this.#wireError(codec.rpc, e, corr_id));
          }
        },
      );
      const cancel = () => call.cancel();
      options.signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  /**
   * Calls a server-streaming RPC; the stream is cancelled if the consumer
   * stops early or `signal` aborts. A broken stream throws PluginCallError.
   */
  async *stream<Req, Res>(
    codec: MethodCodec<Req, Res>,
    req: Req,
    options: CallOptions = {},
  ): AsyncGenerator<Res> {
    if (this.#mux) {
      return yield* muxStream(
        this.#mux,
        this.#callSite(codec),
        req,
        options.corr_id ?? newCorrId(),
        options.timeout_ms,
        options.signal,
      );
    }
    const { method, metadata, corr_id, callOptions } = this.#prepare(
      codec,
      options,
      options.timeout_ms,
    );
    const call = this.#client.makeServerStreamRequest<Wire, Wire>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      codec.encodeRequest(req),
      metadata,
      callOptions,
    );
    const cancel = () => call.cancel();
    options.signal?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const w of call as AsyncIterable<Wire>) {
        let item: Res;
        try {
          item = codec.decodeResponse(w);
        } catch (e) {
          throw this.#wireError(codec.rpc, e, corr_id);
        }
        yield item;
      }
    } catch (e) {
      if (e instanceof PluginCallError) throw e;
      throw this.#error(codec.rpc, e, corr_id);
    } finally {
      options.signal?.removeEventListener("abort", cancel);
      call.cancel();
    }
  }

  /** Closes the channel; calls in flight fail. */
  close(): void {
    this.#mux?.close();
    this.#client.close();
  }

  #callSite<Req, Res>(codec: MethodCodec<Req, Res>): CallSite<Req, Res> {
    const method = this.#definition[codec.rpc];
    if (!method) {
      throw new Error(`${this.kind} service has no RPC ${codec.rpc}`);
    }
    return { kind: this.kind, codec, method };
  }

  #prepare<Req, Res>(
    codec: MethodCodec<Req, Res>,
    options: CallOptions,
    timeout_ms: number | undefined,
  ) {
    const method = this.#definition[codec.rpc];
    if (!method) {
      throw new Error(`${this.kind} service has no RPC ${codec.rpc}`);
    }
    const corr_id = options.corr_id ?? newCorrId();
    const metadata = new grpc.Metadata();
    metadata.set(CORR_ID_KEY, corr_id);
    const callOptions: grpc.CallOptions = timeout_ms === undefined
      ? {}
      : { deadline: Date.now() + timeout_ms };
    return { method, metadata, corr_id, callOptions };
  }

  #error(rpc: string, err: unknown, corr_id: string): PluginCallError {
    const e = err as Partial<grpc.ServiceError>;
    return new PluginCallError(
      this.kind,
      rpc,
      typeof e.code === "number" ? e.code : grpc.status.UNKNOWN,
      e.details ?? e.message ?? String(err),
      corr_id,
    );
  }

  #wireError(rpc: string, err: unknown, corr_id: string): PluginCallError {
    return new PluginCallError(
      this.kind,
      rpc,
      grpc.status.INTERNAL,
      `bad response: ${(err as Error).message}`,
      corr_id,
    );
  }
}

/**
 * Where a client finds its connection: a fixed one, or a function that
 * returns the current incarnation's (e.g. the supervisor's, which may wait
 * for a restart to finish).
 */
export type ConnectionSource =
  | PluginConnection
  | (() => PluginConnection | Promise<PluginConnection>);

/** Resolves a {@linkcode ConnectionSource} for one call. */
export function resolveConnection(
  source: ConnectionSource,
): Promise<PluginConnection> {
  return Promise.resolve(
    typeof source === "function" ? source() : source,
  );
}
