/**
 * `servePlugin`: everything a plugin needs besides its handlers — the socket,
 * `BOI_READY`, Handshake, Health, per-call `corr_id` logs, and exiting when
 * the core goes away (stdin EOF) or asks (SIGTERM) (SPEC §7).
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  type PluginKind,
  pluginService,
  PROTO_MAJOR,
  PROTO_MINOR,
} from "../../proto/mod.ts";
import {
  CODECS,
  COMMON_CODECS,
  type MethodCodec,
  type Wire,
} from "../../node/exec/grpc_codec.ts";
import { CORR_ID_KEY, socketTarget } from "../../node/exec/grpc_client.ts";
import { MUX_CAPABILITY, MUX_RPC } from "../../node/exec/mux_wire.ts";
import { type AnyHandler, Dispatcher, type Route } from "./dispatch.ts";
import { MuxServer } from "./mux_server.ts";
import { addOtherKindsHandshake } from "./other_kinds.ts";
import { SPEC_CACHE_CAPABILITY } from "../../node/exec/spec_cache_wire.ts";
import {
  SpecCache,
  type SpecCacheOptions,
  specCacheRoute,
} from "./spec_cache.ts";
import type {
  HealthResponse,
  PluginContracts,
} from "../../node/plugins/contracts.ts";
import { parseLevel, PluginLogger } from "./log.ts";
import { pluginEnv } from "./env.ts";

/** What a handler knows about the call it serves. */
export interface CallContext {
  /** From the call's `boi-corr-id` metadata ("" if the caller sent none). */
  corr_id: string;
  /** RPC name, e.g. `Spawn`. */
  rpc: string;
  /** Logs with `corr_id` and `rpc` on every line. */
  log: PluginLogger;
  /** Aborted when the caller cancels the call, or shutdown outlasts its grace. */
  signal: AbortSignal;
}

/**
 * Handler signatures derived from a contract: the same method names and
 * types, plus a {@linkcode CallContext}; a result may be returned directly.
 */
export type PluginHandlers<C> = {
  [M in keyof C]: C[M] extends (req: infer Req) => infer Out ? (
      req: Req,
      ctx: CallContext,
    ) => Out extends AsyncIterable<infer Item> ? AsyncIterable<Item>
      : Awaited<Out> | Promise<Awaited<Out>>
    : never;
};

/** Options every plugin kind shares. */
export interface PluginBaseOptions {
  /** Reported in the handshake. */
  name: string;
  /** Reported in the handshake. */
  version: string;
  /**
   * Reported in the handshake, e.g. `["reattach"]`.
   * @default []
   */
  capabilities?: string[];
  /**
   * Answers Health.
   * @default always `{ ok: true, detail: "ok" }`
   */
  health?: (ctx: CallContext) => HealthResponse | Promise<HealthResponse>;
  /** Runs once on shutdown, while in-flight calls drain (e.g. kill workers). */
  onShutdown?: () => void | Promise<void>;
  /**
   * Unix socket path to serve on.
   * @default `BOI_PLUGIN_SOCKET`
   */
  socket?: string;
  /**
   * How long in-flight calls may take to finish on shutdown before they are cut.
   * @default 3000 (inside the supervisor's 5 s grace)
   */
  shutdown_grace_ms?: number;
  /**
   * Exit when stdin reaches EOF (the core died).
   * @default true
   */
  exit_on_stdin_close?: boolean;
  /**
   * Exit gracefully on SIGTERM. Only the mock turns it off (to test the
   * supervisor's SIGKILL after the grace period).
   * @default true
   */
  exit_on_sigterm?: boolean;
  /**
   * Protocol version reported in the handshake. Only the mock overrides it.
   * @default `{ major: PROTO_MAJOR, minor: PROTO_MINOR }`
   */
  proto?: { major: number; minor: number };
  /**
   * Serve and announce the `mux` transport (proto minor ≥ 1): core then
   * carries calls over one stream. Off, or with `proto.minor` 0, the plugin
   * is a 1.0 plugin with plain RPCs only (the fallback tests use that).
   * @default true
   */
  mux?: boolean;
  /**
   * Workspace plugins: announce `spec_cache` (proto minor ≥ 1) and keep the
   * specs core sent in full within these bounds, so core sends each spec's
   * YAML once; `prepare` still gets the full `spec_yaml` every call. `false`
   * (or `proto.minor` 0): every Prepare carries the YAML, as with a 1.0 core.
   * @default `{}` (SpecCacheOptions' defaults: 64 specs, 64 MiB)
   */
  spec_cache?: SpecCacheOptions | false;
  /**
   * Print `BOI_READY` once serving. Only the mock turns it off.
   * @default true
   */
  announce_ready?: boolean;
  /**
   * Runs before every call, Handshake and Health included, before the
   * request is decoded. Fault injection in the mock hangs, delays or exits here.
   */
  intercept?: (rpc: string, ctx: CallContext) => void | Promise<void>;
}

/** `servePlugin` options: the kind, the shared options and that kind's handlers. */
export type ServePluginOptions = {
  [K in PluginKind]:
    & { kind: K }
    & PluginBaseOptions
    & PluginHandlers<PluginContracts[K]>;
}[PluginKind];

/** A running plugin server. */
export interface PluginServer {
  /** The socket it serves on. */
  readonly socket: string;
  /** The plugin's logger (no `corr_id`). */
  readonly log: PluginLogger;
  /** Graceful stop: no new calls, in-flight ones get `shutdown_grace_ms`. */
  shutdown(reason: string): Promise<void>;
}

/**
 * Serves a plugin until the core closes stdin or sends SIGTERM, then exits 0.
 * Resolves once the socket is bound and `BOI_READY` printed.
 */
export async function servePlugin(
  options: ServePluginOptions,
): Promise<PluginServer> {
  const env = options.socket === undefined ? pluginEnv() : null;
  const socket = options.socket ?? env!.socket;
  const log = new PluginLogger(
    {
      plugin: options.name,
      kind: options.kind,
      ...(env?.id ? { plugin_id: env.id } : {}),
    },
    parseLevel(Deno.env.get("BOI_LOG_LEVEL")),
  );
  if (env?.kind && env.kind !== options.kind) {
    log.warn("started as another kind", { expected: env.kind });
  }
  const proto = options.proto ?? { major: PROTO_MAJOR, minor: PROTO_MINOR };
  const shutdownCtl = new AbortController();
  const graceMs = options.shutdown_grace_ms ?? 3000;

  // ---- call plumbing: one dispatcher, two transports ----
  const dispatcher = new Dispatcher(log, shutdownCtl.signal, options.intercept);
  const contextOf = (
    call: { metadata: grpc.Metadata; on(ev: string, f: () => void): unknown },
    rpc: string,
  ): CallContext => {
    const ctl = new AbortController();
    call.on("cancelled", () => ctl.abort(new Error("cancelled by caller")));
    const corr_id = String(call.metadata.get(CORR_ID_KEY)[0] ?? "");
    return dispatcher.context(corr_id, rpc, ctl.signal);
  };

  const unary =
    (route: Route): grpc.handleUnaryCall<Wire, Wire> =>
    async (call, callback) => {
      const ctx = contextOf(call, route.codec.rpc);
      try {
        callback(null, await dispatcher.unary(route, () => call.request, ctx));
      } catch (e) {
        callback(dispatcher.status(ctx, e));
      }
    };

  const serverStream = (
    route: Route,
  ): grpc.handleServerStreamingCall<Wire, Wire> =>
  async (call) => {
    const ctx = contextOf(call, route.codec.rpc);
    try {
      await dispatcher.stream(
        route,
        () => call.request,
        ctx,
        (w) =>
          call.write(w)
            ? undefined
            : new Promise<void>((resolve) => call.once("drain", resolve)),
        () => call.cancelled,
      );
      call.end();
    } catch (e) {
      call.emit("error", dispatcher.status(ctx, e));
    }
  };

  // ---- the service ----
  const mux = (options.mux ?? true) && proto.minor >= 1;
  const specCache = options.kind === "workspace" && proto.minor >= 1 &&
      options.spec_cache !== false
    ? new SpecCache(options.spec_cache)
    : null;
  const capabilities = [
    ...(options.capabilities ?? []),
    ...(mux ? [MUX_CAPABILITY] : []),
    ...(specCache ? [SPEC_CACHE_CAPABILITY] : []),
  ];
  dispatcher.routes.set("Handshake", {
    codec: COMMON_CODECS.handshake as MethodCodec<unknown, unknown>,
    handler: (req, ctx) => {
      const r = req as { core_version: string; proto_major: number };
      if (r.proto_major !== proto.major) {
        // Core decides; the plugin only says what it speaks.
        ctx.log.warn("core speaks another protocol major", {
          core_version: r.core_version,
          core_proto_major: r.proto_major,
        });
      }
      return {
        plugin_name: options.name,
        plugin_version: options.version,
        proto_major: proto.major,
        proto_minor: proto.minor,
        capabilities,
      };
    },
  });
  dispatcher.routes.set("Health", {
    codec: COMMON_CODECS.health as MethodCodec<unknown, unknown>,
    handler: (_req, ctx) => options.health?.(ctx) ?? { ok: true, detail: "ok" },
  });
  const handlers = options as unknown as Record<string, unknown>;
  const codecs = CODECS[options.kind] as Record<
    string,
    MethodCodec<unknown, unknown>
  >;
  for (const [method, codec] of Object.entries(codecs)) {
    const fn = handlers[method];
    if (typeof fn !== "function") {
      throw new Error(
        `servePlugin: a ${options.kind} plugin needs a ${method}() handler`,
      );
    }
    dispatcher.routes.set(codec.rpc, {
      codec,
      handler: (fn as AnyHandler).bind(options),
    });
  }
  const prepare = dispatcher.routes.get("Prepare");
  if (specCache && prepare) {
    dispatcher.routes.set("Prepare", specCacheRoute(prepare, specCache));
  }
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [rpc, route] of dispatcher.routes) {
    impl[rpc] = route.codec.stream ? serverStream(route) : unary(route);
  }
  const { definition } = pluginService(options.kind);
  // A 1.0 plugin has no Mux RPC at all: calling it answers UNIMPLEMENTED.
  const muxServer = mux ? new MuxServer(dispatcher, definition, log) : null;
  if (muxServer) impl[MUX_RPC] = muxServer.handler;

  const server = new grpc.Server();
  server.addService(definition, impl);
  addOtherKindsHandshake(server, options.kind);
  await removeStaleSocket(socket);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(
      socketTarget(socket),
      grpc.ServerCredentials.createInsecure(),
      (err) => err ? reject(err) : resolve(),
    );
  });

  // ---- shutdown ----
  let closing: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => {
    closing ??= (async () => {
      log.info("shutting down", { reason });
      // No new calls; in-flight ones finish (a pool's streams end with the
      // exits onShutdown causes) or are cut after the grace.
      const drained = new Promise<void>((r) => server.tryShutdown(() => r()));
      // Mux streams are calls too: they end once their calls are done.
      muxServer?.drain();
      try {
        await options.onShutdown?.();
      } catch (e) {
        log.error("onShutdown failed", { error: (e as Error).message });
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((r) => {
        timer = setTimeout(() => r("late"), graceMs);
      });
      if (await Promise.race([drained, late]) === "late") {
        log.warn("calls still running after grace: cutting them", { graceMs });
        shutdownCtl.abort(new Error(`plugin shutting down: ${reason}`));
        server.forceShutdown();
      }
      clearTimeout(timer);
      await Deno.remove(socket).catch(() => {});
    })();
    return closing;
  };
  const exitAfter = (reason: string) => {
    shutdown(reason).finally(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", () => {
    if (options.exit_on_sigterm ?? true) exitAfter("SIGTERM");
    else log.warn("ignoring SIGTERM (exit_on_sigterm: false)");
  });
  Deno.addSignalListener("SIGINT", () => exitAfter("SIGINT"));
  if (options.exit_on_stdin_close ?? true) {
    watchStdin().then(() => exitAfter("stdin closed"));
  }

  log.info("serving", {
    socket,
    proto: `${proto.major}.${proto.minor}`,
    version: options.version,
  });
  if (options.announce_ready ?? true) {
    Deno.stdout.writeSync(new TextEncoder().encode("BOI_READY\n"));
  }
  return { socket, log, shutdown };
}

/** Resolves at stdin EOF (or error): the core that held the pipe is gone. */
async function watchStdin(): Promise<void> {
  const buf = new Uint8Array(256);
  try {
    while (await Deno.stdin.read(buf) !== null) {
      // input is ignored: stdin is only a lifeline
    }
  } catch {
    // a broken pipe means the same as EOF
  }
}

/** A socket left by a crashed incarnation blocks the bind; anything else there is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (!info.isSocket) {
    throw new Error(
      `${path} exists and is not a socket: refusing to remove it`,
    );
  }
  await Deno.remove(path);
}
