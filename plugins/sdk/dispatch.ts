/**
 * How the SDK serves one call, whatever carries it: a plain gRPC call
 * (serve.ts) or a frame on the Mux stream (mux_server.ts). Both transports
 * hand over the RPC name, the corr id and the request, and get back the
 * response, the stream items, or the status a failure maps to — so
 * intercept, handlers, corr-id logs and error codes are the same on both.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  type MethodCodec,
  type Wire,
  WireError,
} from "../../node/exec/grpc_codec.ts";
import { PluginError } from "./errors.ts";
import type { PluginLogger } from "./log.ts";
import type { CallContext } from "./serve.ts";

/** A handler as the dispatcher calls it. */
export type AnyHandler = (req: unknown, ctx: CallContext) => unknown;

/** One RPC the plugin serves: how it crosses the wire and who answers it. */
export interface Route {
  codec: MethodCodec<unknown, unknown>;
  handler: AnyHandler;
}

/** A failed call's gRPC status. */
export interface CallStatus {
  code: number;
  details: string;
}

const quiet = (rpc: string) => rpc === "Health" || rpc === "Handshake";

/** The routes of one plugin plus what every call shares; see the module doc. */
export class Dispatcher {
  /** By RPC name, e.g. `Prepare`; Handshake and Health included. */
  readonly routes = new Map<string, Route>();

  /**
   * The signals of the calls in flight, aborted together when shutdown
   * outlasts its grace. One controller per call, not `AbortSignal.any`:
   * that cost ~27 µs per call here (measured), three calls per task.
   */
  readonly #live = new Set<AbortController>();
  readonly #controllers = new WeakMap<CallContext, AbortController>();

  constructor(
    private readonly log: PluginLogger,
    /** Aborted when shutdown outlasts its grace: cuts every call. */
    private readonly shutdown: AbortSignal,
    private readonly intercept?: (
      rpc: string,
      ctx: CallContext,
    ) => void | Promise<void>,
  ) {
    shutdown.addEventListener("abort", () => {
      for (const ctl of this.#live) ctl.abort(shutdown.reason);
      this.#live.clear();
    }, { once: true });
  }

  /**
   * The context of one call; `cancelled` is aborted when the caller gives up.
   * Its signal is released when {@linkcode unary} or {@linkcode stream} ends.
   */
  context(corr_id: string, rpc: string, cancelled: AbortSignal): CallContext {
    const ctl = new AbortController();
    if (this.shutdown.aborted) ctl.abort(this.shutdown.reason);
    else if (cancelled.aborted) ctl.abort(cancelled.reason);
    else {
      cancelled.addEventListener("abort", () => ctl.abort(cancelled.reason), {
        once: true,
      });
      this.#live.add(ctl);
    }
    const parent = this.log;
    let log: PluginLogger | null = null;
    const ctx: CallContext = {
      corr_id,
      rpc,
      // Made on first use: most calls log nothing at the default level.
      get log() {
        return log ??= parent.child({ corr_id, rpc });
      },
      signal: ctl.signal,
    };
    this.#controllers.set(ctx, ctl);
    return ctx;
  }

  /** The call of `ctx` is over: shutdown no longer needs to cut it. */
  #release(ctx: CallContext): void {
    const ctl = this.#controllers.get(ctx);
    if (ctl) this.#live.delete(ctl);
  }

  /**
   * Serves a unary call: intercept, decode (`request` may throw), handler,
   * encode. Throws what failed; {@linkcode status} maps it.
   */
  async unary(route: Route, request: () => Wire, ctx: CallContext) {
    try {
      const started = performance.now();
      await this.intercept?.(route.codec.rpc, ctx);
      const res = await route.handler(
        route.codec.decodeRequest(request()),
        ctx,
      );
      const out = route.codec.encodeResponse(res);
      // Debug, not info: one line per task and RPC, relayed through the
      // node, was a measurable share of both processes' CPU under load.
      if (!quiet(route.codec.rpc) && this.log.level === "debug") {
        ctx.log.debug("call", { ms: Math.round(performance.now() - started) });
      }
      return out;
    } finally {
      this.#release(ctx);
    }
  }

  /**
   * Serves a server-streaming call, passing each item to `write` (which may
   * wait while its transport is saturated). A call cut by shutdown rather
   * than by its caller throws UNAVAILABLE, never ends cleanly.
   */
  async stream(
    route: Route,
    request: () => Wire,
    ctx: CallContext,
    write: (w: Wire) => void | Promise<void>,
    cancelledByCaller: () => boolean,
  ): Promise<void> {
    try {
      await this.#stream(route, request, ctx, write, cancelledByCaller);
    } finally {
      this.#release(ctx);
    }
  }

  async #stream(
    route: Route,
    request: () => Wire,
    ctx: CallContext,
    write: (w: Wire) => void | Promise<void>,
    cancelledByCaller: () => boolean,
  ): Promise<void> {
    const started = performance.now();
    let items = 0;
    await this.intercept?.(route.codec.rpc, ctx);
    const it = (route.handler(
      route.codec.decodeRequest(request()),
      ctx,
    ) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    // A cancelled call must not wait for the worker's next event: the abort
    // wakes whichever wait is current. Not Promise.race against one
    // long-lived "aborted" promise: each race left a reaction on it for the
    // call's life, ~260 bytes per item of a chatty task's output (measured:
    // 400,000 races, 103 MB), and cost 2.5-11 µs against ~1 µs for this.
    let wake: ((r: "aborted") => void) | null = null;
    const onAbort = () => wake?.("aborted");
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    const untilAborted = <T>(p: Promise<T>) =>
      ctx.signal.aborted
        ? Promise.resolve("aborted" as const)
        : new Promise<T | "aborted">((resolve, reject) => {
          wake = resolve;
          p.then(resolve, reject);
        });
    try {
      for (;;) {
        const r = await untilAborted(it.next());
        if (r === "aborted") {
          it.return?.(); // not awaited: a generator parked in an await answers late
          if (!cancelledByCaller()) {
            throw new PluginError("UNAVAILABLE", "plugin shutting down");
          }
          break;
        }
        if (r.done) break;
        items++;
        let wait;
        try {
          wait = write(route.codec.encodeResponse(r.value));
        } catch (e) {
          // Refused (an item over the message limit, mux_server.ts): the
          // handler's generator is let go, or it stayed suspended with what
          // it holds (the pool's output buffer kept its cursor).
          it.return?.();
          throw e;
        }
        if (wait) await untilAborted(wait);
      }
    } finally {
      wake = null;
      ctx.signal.removeEventListener("abort", onAbort);
    }
    if (this.log.level === "debug") {
      ctx.log.debug("stream", {
        items,
        ms: Math.round(performance.now() - started),
        cancelled: ctx.signal.aborted,
      });
    }
  }

  /** The status a failed call answers with (logged with its corr_id). */
  status(ctx: CallContext, e: unknown): CallStatus {
    const code = e instanceof PluginError
      ? grpc.status[e.code]
      : e instanceof WireError
      ? grpc.status.INVALID_ARGUMENT
      : grpc.status.INTERNAL;
    const details = (e as Error)?.message ?? String(e);
    ctx.log.warn("call failed", { code: grpc.status[code], error: details });
    return { code, details };
  }
}
