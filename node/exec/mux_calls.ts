/**
 * Unary and server-streaming calls over a {@linkcode MuxChannel}, with the
 * same results and errors as plain gRPC calls: the RPC's own messages
 * (encoded with its serializers), a deadline that fails DEADLINE_EXCEEDED,
 * an abort signal that fails CANCELLED, and a PluginCallError carrying the
 * plugin's status code otherwise.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";
import type { PluginKind } from "../../proto/mod.ts";
import type { MethodCodec } from "./grpc_codec.ts";
import type { MuxChannel } from "./mux_client.ts";
import { PluginCallError } from "./plugin_call_error.ts";

/** One RPC of one service, as a call needs it. */
export interface CallSite<Req, Res> {
  kind: PluginKind;
  codec: MethodCodec<Req, Res>;
  method: grpc.MethodDefinition<unknown, unknown>;
}

function encode<Req, Res>(site: CallSite<Req, Res>, req: Req): Uint8Array {
  return site.method.requestSerialize(site.codec.encodeRequest(req));
}

function decode<Req, Res>(
  site: CallSite<Req, Res>,
  bytes: Uint8Array,
  corr_id: string,
): Res {
  try {
    return site.codec.decodeResponse(
      site.method.responseDeserialize(bytes as Buffer) as never,
    );
  } catch (e) {
    throw failure(
      site,
      grpc.status.INTERNAL,
      `bad response: ${(e as Error).message}`,
      corr_id,
    );
  }
}

function failure<Req, Res>(
  site: CallSite<Req, Res>,
  code: number,
  details: string,
  corr_id: string,
): PluginCallError {
  return new PluginCallError(site.kind, site.codec.rpc, code, details, corr_id);
}

/** A unary call over the Mux stream; see the module doc. */
export function muxUnary<Req, Res>(
  mux: MuxChannel,
  site: CallSite<Req, Res>,
  req: Req,
  corr_id: string,
  timeout_ms: number,
  signal?: AbortSignal,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    let response: Uint8Array | null = null;
    const settle = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
    };
    const id = mux.open(site.codec.rpc, corr_id, encode(site, req), {
      message: (b) => response = b,
      end: (code, details) => {
        settle();
        if (code !== grpc.status.OK) {
          reject(failure(site, code, details, corr_id));
        } else if (response === null) {
          reject(failure(site, grpc.status.INTERNAL, "no response", corr_id));
        } else {
          try {
            resolve(decode(site, response, corr_id));
          } catch (e) {
            reject(e);
          }
        }
      },
    });
    const giveUp = (code: number, details: string) => {
      mux.cancel(id);
      settle();
      reject(failure(site, code, details, corr_id));
    };
    const timer = setTimeout(
      () => giveUp(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded"),
      timeout_ms,
    );
    const abort = () => giveUp(grpc.status.CANCELLED, "Cancelled on client");
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort, { once: true });
  });
}

/**
 * A server-streaming call over the Mux stream; stopping early (or `signal`)
 * cancels it in the plugin. Items arrive in order; a failure comes after the
 * items sent before it, as on a plain call.
 */
export async function* muxStream<Req, Res>(
  mux: MuxChannel,
  site: CallSite<Req, Res>,
  req: Req,
  corr_id: string,
  timeout_ms: number | undefined,
  signal?: AbortSignal,
): AsyncGenerator<Res> {
  const items: Uint8Array[] = [];
  let ended: { code: number; details: string } | null = null;
  let wake: (() => void) | null = null;
  const poke = () => {
    wake?.();
    wake = null;
  };
  const id = mux.open(site.codec.rpc, corr_id, encode(site, req), {
    message: (b) => {
      items.push(b);
      poke();
    },
    end: (code, details) => {
      ended = { code, details };
      poke();
    },
  });
  const giveUp = (code: number, details: string) => {
    if (ended) return;
    mux.cancel(id);
    items.length = 0;
    ended = { code, details };
    poke();
  };
  const abort = () => giveUp(grpc.status.CANCELLED, "Cancelled on client");
  const timer = timeout_ms === undefined ? undefined : setTimeout(
    () => giveUp(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded"),
    timeout_ms,
  );
  if (signal?.aborted) abort();
  else signal?.addEventListener("abort", abort, { once: true });
  try {
    for (;;) {
      const next = items.shift();
      if (next !== undefined) {
        yield decode(site, next, corr_id);
        continue;
      }
      const end = ended as { code: number; details: string } | null;
      if (end !== null) {
        if (end.code === grpc.status.OK) return;
        throw failure(site, end.code, end.details, corr_id);
      }
      await new Promise<void>((r) => wake = r);
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", abort);
    if (!ended) mux.cancel(id);
  }
}
