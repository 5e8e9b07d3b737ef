/**
 * The plugin's end of the `mux` transport (proto minor 1, common.proto):
 * serves the calls core sends as frames on a `Mux` stream through the same
 * {@linkcode Dispatcher} as plain gRPC calls, and answers in batches.
 *
 * A caller's cancel frame, or the stream going away, aborts the handlers'
 * signal exactly as a cancelled plain call does. On shutdown new calls are
 * refused UNAVAILABLE; once the in-flight ones are done the streams end, so
 * the gRPC server's graceful shutdown can finish.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";
import {
  BatchWriter,
  decodeBatch,
  MAX_MESSAGE_BYTES,
  MUX_RPC,
  type MuxFrame,
} from "../../node/exec/mux_wire.ts";
import type { CallStatus, Dispatcher, Route } from "./dispatch.ts";
import { PluginError } from "./errors.ts";
import type { PluginLogger } from "./log.ts";

interface Call {
  ctl: AbortController;
  cancelledByCaller: boolean;
}

interface Stream {
  call: grpc.ServerDuplexStream<Buffer, Buffer>;
  writer: BatchWriter;
  calls: Map<number, Call>;
}

/** Serves `Mux` streams for one service; see the module doc. */
export class MuxServer {
  readonly #streams = new Set<Stream>();
  #accepting = true;
  #inFlight = 0;
  #idle: PromiseWithResolvers<void> | null = null;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly definition: grpc.ServiceDefinition,
    private readonly log: PluginLogger,
  ) {}

  /** The Mux RPC's handler, for the service implementation. */
  readonly handler: grpc.handleBidiStreamingCall<Buffer, Buffer> = (call) => {
    const s: Stream = {
      call,
      writer: new BatchWriter((b) => call.write(b)),
      calls: new Map(),
    };
    this.#streams.add(s);
    call.on("drain", () => s.writer.drained());
    call.on("data", (b: Buffer) => {
      let frames: MuxFrame[];
      try {
        frames = decodeBatch(b);
      } catch (e) {
        this.log.warn("bad mux batch: ending the stream", {
          error: (e as Error).message,
        });
        this.#gone(s);
        call.emit("error", {
          code: grpc.status.INVALID_ARGUMENT,
          details: (e as Error).message,
        });
        return;
      }
      for (const f of frames) {
        if ("open" in f) this.#start(s, f.id, f.open);
        else if ("cancel" in f) {
          const c = s.calls.get(f.id);
          if (c) {
            c.cancelledByCaller = true;
            c.ctl.abort(new Error("cancelled by caller"));
          }
        }
      }
    });
    // The caller went away (closed, crashed, cancelled): so did its calls.
    call.on("end", () => this.#gone(s));
    call.on("cancelled", () => this.#gone(s));
    call.on("error", () => this.#gone(s));
  };

  /**
   * Shutdown: refuses new calls, waits for the in-flight ones, then ends
   * every stream (what was queued is sent first).
   */
  async drain(): Promise<void> {
    this.#accepting = false;
    if (this.#inFlight > 0) {
      this.#idle ??= Promise.withResolvers<void>();
      await this.#idle.promise;
    }
    for (const s of this.#streams) {
      s.writer.flush();
      s.writer.close();
      s.call.end();
    }
    this.#streams.clear();
  }

  #start(
    s: Stream,
    id: number,
    open: { rpc: string; corr_id: string; request: Uint8Array },
  ): void {
    const route = open.rpc === MUX_RPC
      ? undefined
      : this.dispatcher.routes.get(open.rpc);
    const method = this.definition[open.rpc];
    if (!route || !method) {
      return this.#end(s, id, {
        code: grpc.status.UNIMPLEMENTED,
        details: `no RPC ${open.rpc} in this service`,
      });
    }
    if (!this.#accepting) {
      return this.#end(s, id, {
        code: grpc.status.UNAVAILABLE,
        details: "plugin shutting down",
      });
    }
    const c: Call = { ctl: new AbortController(), cancelledByCaller: false };
    s.calls.set(id, c);
    this.#inFlight++;
    this.#serve(s, id, open, route, c);
  }

  /** Runs one call to its end frame (one async frame, no promise chain). */
  async #serve(
    s: Stream,
    id: number,
    open: { rpc: string; corr_id: string; request: Uint8Array },
    route: Route,
    c: Call,
  ): Promise<void> {
    const ctx = this.dispatcher.context(open.corr_id, open.rpc, c.ctl.signal);
    // The frame carries the request as its RPC's message bytes; the route's
    // codec decodes them (a WireError naming the field if they do not).
    const request = () => open.request;
    const fits = (w: Uint8Array) => {
      if (w.length <= MAX_MESSAGE_BYTES) return;
      throw new PluginError(
        "RESOURCE_EXHAUSTED",
        `${open.rpc}: a message of ${w.length} bytes is over the ${MAX_MESSAGE_BYTES} bytes one call may carry`,
      );
    };
    try {
      if (route.codec.stream) {
        await this.dispatcher.stream(route, request, ctx, (w) => {
          fits(w);
          s.writer.send({ id, message: w });
          return s.writer.ready();
        }, () => c.cancelledByCaller);
      } else {
        const w = await this.dispatcher.unary(route, request, ctx);
        fits(w);
        s.writer.send({ id, message: w });
      }
      this.#end(s, id, { code: grpc.status.OK, details: "" }, c);
    } catch (e) {
      if (c.cancelledByCaller) ctx.log.debug("call cancelled by caller");
      else this.#end(s, id, this.dispatcher.status(ctx, e), c);
    } finally {
      s.calls.delete(id);
      if (--this.#inFlight === 0 && this.#idle) {
        this.#idle.resolve();
        this.#idle = null;
      }
    }
  }

  #end(s: Stream, id: number, st: CallStatus, c?: Call): void {
    if (c?.cancelledByCaller) return; // the caller forgot the id
    s.writer.send({ id, end: st });
  }

  /** The stream is over: every call it carried is cancelled. */
  #gone(s: Stream): void {
    if (!this.#streams.delete(s)) return;
    s.writer.close();
    for (const c of s.calls.values()) {
      c.cancelledByCaller = true;
      c.ctl.abort(new Error("cancelled by caller"));
    }
  }
}
