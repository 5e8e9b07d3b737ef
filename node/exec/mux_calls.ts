/**
 * Unary and server-streaming calls over a {@linkcode MuxChannel}, with the
 * same results and errors as plain gRPC calls: the RPC's own messages
 * (the bytes its generated codec makes), a deadline that fails DEADLINE_EXCEEDED,
 * an abort signal that fails CANCELLED, and a PluginCallError carrying the
 * plugin's status code otherwise.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { PluginKind } from "../../proto/mod.ts";
import type { MethodCodec } from "./grpc_codec.ts";
import type { MuxChannel, MuxSink } from "./mux_client.ts";
import type { Deadline } from "./deadlines.ts";
import { PluginCallError } from "./plugin_call_error.ts";

/** One RPC of one service, as a call needs it. */
export interface CallSite<Req, Res> {
  kind: PluginKind;
  codec: MethodCodec<Req, Res>;
  method: grpc.MethodDefinition<unknown, unknown>;
}

function encode<Req, Res>(site: CallSite<Req, Res>, req: Req): Uint8Array {
  return site.codec.encodeRequest(req);
}

function decode<Req, Res>(
  site: CallSite<Req, Res>,
  bytes: Uint8Array,
  corr_id: string,
): Res {
  try {
    return site.codec.decodeResponse(bytes);
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

/** One unary call in flight: its sink, deadline and abort hook in one object. */
class UnaryCall<Req, Res> implements MuxSink {
  response: Uint8Array | null = null;
  id = 0;
  deadline: Deadline | null = null;
  readonly abort = () =>
    this.giveUp(grpc.status.CANCELLED, "Cancelled on client");

  constructor(
    readonly mux: MuxChannel,
    readonly site: CallSite<Req, Res>,
    readonly corr_id: string,
    readonly timeout_ms: number,
    readonly signal: AbortSignal | undefined,
    readonly resolve: (r: Res) => void,
    readonly reject: (e: unknown) => void,
  ) {}

  message(b: Uint8Array): void {
    this.response = b;
  }

  end(code: number, details: string): void {
    this.settle();
    const { site, corr_id } = this;
    if (code !== grpc.status.OK) {
      this.reject(failure(site, code, details, corr_id));
    } else if (this.response === null) {
      this.reject(failure(site, grpc.status.INTERNAL, "no response", corr_id));
    } else {
      try {
        this.resolve(decode(site, this.response, corr_id));
      } catch (e) {
        this.reject(e);
      }
    }
  }

  giveUp(code: number, details: string): void {
    this.mux.cancel(this.id);
    this.settle();
    this.reject(failure(this.site, code, details, this.corr_id));
  }

  settle(): void {
    if (this.deadline) {
      this.mux.deadlines.settle(this.deadline, this.timeout_ms);
    }
    this.signal?.removeEventListener("abort", this.abort);
  }
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
    const call = new UnaryCall(
      mux,
      site,
      corr_id,
      timeout_ms,
      signal,
      resolve,
      reject,
    );
    call.id = mux.open(site.codec.rpc, corr_id, encode(site, req), call);
    // A closed channel fails the call a microtask later: no timer for it.
    if (!mux.closed) {
      call.deadline = mux.deadlines.add(
        timeout_ms,
        () => call.giveUp(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded"),
      );
    }
    if (signal?.aborted) call.abort();
    else signal?.addEventListener("abort", call.abort, { once: true });
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
