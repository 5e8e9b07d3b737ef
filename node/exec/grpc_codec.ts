/**
 * How each RPC's messages cross the wire, one table for both sides: core
 * clients encode requests and decode responses, the plugin SDK the reverse.
 * The codecs are the ones generated from the `.proto` files (proto/gen); this
 * adds only what a `.proto` cannot say — a oneof that must be set, the hook
 * tier's two values — and Spawn's handier contract shape (contracts.ts).
 * Decoding never trusts the other side, another program: bytes that do not
 * decode are a WireError naming the message and field.
 * @module
 */
import type { Reader, Writer } from "protobufjs/minimal.js";
import { type PluginKind, SERVICE_DEFINITIONS } from "../../proto/mod.ts";
import * as pool from "../../proto/gen/boi/pool/v1/pool.ts";
import * as hooks from "../../proto/gen/boi/hooks/v1/hooks.ts";
import { explainDecodeError, type MessageSite } from "./wire_explain.ts";
import type {
  HandshakeRequest,
  HandshakeResponse,
  HealthResponse,
  HookEvent,
  HookTier,
  PluginContracts,
  SpawnRequest,
  WorkerEvent,
} from "../plugins/contracts.ts";

/** A message as it crosses the wire: the bytes the generated codec made. */
export type Wire = Uint8Array;

/** A message that does not have the shape its contract promises. */
export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

/** How one RPC's request and response cross the wire. */
export interface MethodCodec<Req, Res> {
  /** RPC name in the service, e.g. `Prepare`. */
  rpc: string;
  /** Server streaming: the response is a stream of `Res`. */
  stream: boolean;
  encodeRequest(req: Req): Wire;
  decodeRequest(w: Wire): Req;
  encodeResponse(res: Res): Wire;
  decodeResponse(w: Wire): Res;
}

/** Request and response (or stream item) types of each method of contract `C`. */
export type MethodCodecs<C> = {
  [M in keyof C]: C[M] extends (req: infer Req) => infer Out ? MethodCodec<
      Req,
      Out extends AsyncIterable<infer Item> ? Item : Awaited<Out>
    >
    : never;
};

/** What every generated message type offers. */
export interface MessageType<T> {
  encode(message: T, writer?: Writer): Writer;
  decode(input: Reader | Uint8Array, length?: number): T;
}

/** Decodes `w`; a failure is a WireError naming the broken field. */
export function decodeMessage<T>(
  type: MessageType<T>,
  w: Wire,
  site: MessageSite,
): T {
  try {
    return type.decode(w);
  } catch (e) {
    throw new WireError(
      explainDecodeError(site, w) ??
        `${siteName(site)}: ${(e as Error).message}`,
    );
  }
}

function siteName(site: MessageSite): string {
  return "type" in site ? site.type : `${site.rpc} ${site.side}`;
}

/** The encoded bytes of `message`. */
export function encodeMessage<T>(type: MessageType<T>, message: T): Wire {
  return type.encode(message).finish();
}

/** A generated method description (proto/gen's `…Definition.methods`). */
interface GenMethod<Req, Res> {
  readonly name: string;
  readonly requestType: MessageType<Req>;
  readonly responseType: MessageType<Res>;
  readonly responseStream: boolean;
}

/** The codec of one generated method, the messages as generated. */
function method<Req, Res>(
  service: string,
  m: GenMethod<Req, Res>,
): MethodCodec<Req, Res> {
  const req: MessageSite = { service, rpc: m.name, side: "request" };
  const res: MessageSite = { service, rpc: m.name, side: "response" };
  return {
    rpc: m.name,
    stream: m.responseStream,
    encodeRequest: (r) => encodeMessage(m.requestType, r),
    decodeRequest: (w) => decodeMessage(m.requestType, w, req),
    encodeResponse: (r) => encodeMessage(m.responseType, r),
    decodeResponse: (w) => decodeMessage(m.responseType, w, res),
  };
}

/** An RPC whose contract answers nothing: the empty response message. */
function noResult<Req, Res>(c: MethodCodec<Req, Res>): MethodCodec<Req, void> {
  const empty = c.encodeResponse({} as Res);
  return {
    ...c,
    encodeResponse: () => empty,
    decodeResponse: (w) => void c.decodeResponse(w),
  };
}

const S = SERVICE_DEFINITIONS;
const WS = S.workspace.fullName, POOL = S.pool.fullName;

// ---- the shared calls ----

/** Handshake and Health, the same on every service. */
export const COMMON_CODECS: {
  handshake: MethodCodec<HandshakeRequest, HandshakeResponse>;
  health: MethodCodec<Record<never, never>, HealthResponse>;
} = {
  handshake: method(WS, S.workspace.methods.handshake),
  health: method(WS, S.workspace.methods.health),
};

// ---- Spawn: the contract's shape of the oneofs ----

const spawnGen = method(POOL, S.pool.methods.spawn);

function spawnToWire(r: SpawnRequest): pool.SpawnRequest {
  return {
    task_id: r.task_id,
    claim_token: r.claim_token,
    workdir: r.workdir,
    command: r.argv !== null
      ? { $case: "argv", argv: { args: r.argv } }
      : r.shell !== null
      ? { $case: "shell", shell: r.shell }
      : undefined,
    prompt: r.prompt ?? undefined,
    env: r.env,
    timeout_ms: r.timeout_ms ?? undefined,
  };
}

function spawnFromWire(w: pool.SpawnRequest): SpawnRequest {
  const c = w.command;
  return {
    task_id: w.task_id,
    claim_token: w.claim_token,
    workdir: w.workdir,
    argv: c?.$case === "argv" ? c.argv.args : null,
    shell: c?.$case === "shell" ? c.shell : null,
    prompt: w.prompt ?? null,
    env: w.env,
    timeout_ms: w.timeout_ms ?? null,
  };
}

function eventToWire(ev: WorkerEvent): pool.WorkerEvent {
  if ("started" in ev) {
    return { event: { $case: "started", started: ev.started } };
  }
  if ("stdout" in ev) return { event: { $case: "stdout", stdout: ev.stdout } };
  if ("stderr" in ev) return { event: { $case: "stderr", stderr: ev.stderr } };
  const { code, signal, error } = ev.exit;
  return {
    event: {
      $case: "exit",
      exit: {
        code: code ?? undefined,
        signal: signal ?? undefined,
        error: error ?? undefined,
      },
    },
  };
}

function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function eventFromWire(w: pool.WorkerEvent): WorkerEvent {
  const e = w.event;
  if (e === undefined) throw new WireError("WorkerEvent: no event set");
  switch (e.$case) {
    case "started":
      return { started: e.started };
    // A plain view: callers should not depend on Buffer's extras.
    case "stdout":
      return { stdout: plain(e.stdout) };
    case "stderr":
      return { stderr: plain(e.stderr) };
  }
  return {
    exit: {
      code: e.exit.code ?? null,
      signal: e.exit.signal ?? null,
      error: e.exit.error ?? null,
    },
  };
}

// ---- hooks: the tier's values ----

const TIERS: readonly HookTier[] = ["best_effort", "audit"];
const onEventGen = method(S.hooks.fullName, S.hooks.methods.onEvent);

function hookEventFromWire(w: hooks.OnEventRequest): HookEvent {
  const tier = w.tier || "best_effort";
  if (!(TIERS as readonly string[]).includes(tier)) {
    throw new WireError(
      `OnEventRequest.tier: expected one of ${TIERS.join(", ")}: got "${tier}"`,
    );
  }
  return { ...w, tier: tier as HookTier };
}

// ---- one table per kind ----

const prepareGen = method(WS, S.workspace.methods.prepare);

/** Every method of every kind. */
export const CODECS: {
  [K in PluginKind]: MethodCodecs<PluginContracts[K]>;
} = {
  workspace: {
    prepare: {
      ...prepareGen,
      // A plain Prepare: no spec cache (spec_cache_wire.ts has that one).
      encodeRequest: (r) =>
        prepareGen.encodeRequest({
          ...r,
          spec_digest: "",
          spec_yaml_cached: false,
        }),
      decodeRequest: (w) => {
        const { spec_digest: _d, spec_yaml_cached: _c, ...r } = prepareGen
          .decodeRequest(w);
        return r;
      },
    },
    cleanup: noResult(method(WS, S.workspace.methods.cleanup)),
  },
  pool: {
    spawn: {
      rpc: spawnGen.rpc,
      stream: spawnGen.stream,
      encodeRequest: (r) => spawnGen.encodeRequest(spawnToWire(r)),
      decodeRequest: (w) => spawnFromWire(spawnGen.decodeRequest(w)),
      encodeResponse: (ev) => spawnGen.encodeResponse(eventToWire(ev)),
      decodeResponse: (w) => eventFromWire(spawnGen.decodeResponse(w)),
    },
    kill: noResult(method(POOL, S.pool.methods.kill)),
  },
  router: {
    route: method(S.router.fullName, S.router.methods.route),
  },
  provisioner: {
    allocate: method(S.provisioner.fullName, S.provisioner.methods.allocate),
    deallocate: noResult(
      method(S.provisioner.fullName, S.provisioner.methods.deallocate),
    ),
  },
  hooks: {
    onEvent: {
      ...onEventGen,
      encodeRequest: (ev) => onEventGen.encodeRequest(ev),
      decodeRequest: (w) => hookEventFromWire(onEventGen.decodeRequest(w)),
    },
  },
};
