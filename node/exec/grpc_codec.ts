/**
 * Conversions between the plugin contracts (node/plugins/contracts.ts) and the
 * objects @grpc/proto-loader reads and writes, one table for both sides: core
 * clients encode requests and decode responses, the plugin SDK the reverse.
 * Decoding checks types, because the other side is another program.
 * @module
 */
import { Buffer } from "node:buffer";
import type { PluginKind } from "../../proto/mod.ts";
import type {
  HandshakeRequest,
  HandshakeResponse,
  HealthResponse,
  HookTier,
  PluginContracts,
  WorkerEvent,
} from "../plugins/contracts.ts";

/** A message as proto-loader hands it over (field names as in the .proto). */
export type Wire = Record<string, unknown>;

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

// ---- field readers: each names the field it rejects ----

function str(w: Wire, f: string): string {
  const v = w[f] ?? "";
  if (typeof v !== "string") throw new WireError(`${f}: expected a string`);
  return v;
}

function optStr(w: Wire, f: string): string | null {
  const v = w[f];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new WireError(`${f}: expected a string`);
  return v;
}

function num(w: Wire, f: string): number {
  const v = w[f] ?? 0;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new WireError(`${f}: expected a number`);
  }
  return v;
}

function optNum(w: Wire, f: string): number | null {
  return w[f] === undefined || w[f] === null ? null : num(w, f);
}

function bool(w: Wire, f: string): boolean {
  const v = w[f] ?? false;
  if (typeof v !== "boolean") throw new WireError(`${f}: expected a boolean`);
  return v;
}

function strMap(w: Wire, f: string): Record<string, string> {
  const v = w[f] ?? {};
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new WireError(`${f}: expected a map`);
  }
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== "string") {
      throw new WireError(`${f}.${k}: expected a string`);
    }
    out[k] = x;
  }
  return out;
}

function strList(w: Wire, f: string): string[] {
  const v = w[f] ?? [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new WireError(`${f}: expected a list of strings`);
  }
  return v as string[];
}

function msg(w: Wire, f: string): Wire {
  const v = w[f];
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new WireError(`${f}: expected a message`);
  }
  return v as Wire;
}

function bytes(w: Wire, f: string): Uint8Array {
  const v = w[f];
  if (!(v instanceof Uint8Array)) throw new WireError(`${f}: expected bytes`);
  // A plain view: callers should not depend on Buffer's extras.
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Leaves out nulls: proto3 `optional` fields are absent, not zero. */
function present(o: Record<string, unknown>): Wire {
  const out: Wire = {};
  for (const [k, v] of Object.entries(o)) if (v !== null) out[k] = v;
  return out;
}

const TIERS: readonly HookTier[] = ["best_effort", "audit"];

function tier(w: Wire): HookTier {
  const t = str(w, "tier") || "best_effort";
  if (!(TIERS as readonly string[]).includes(t)) {
    throw new WireError(`tier: expected one of ${TIERS.join(", ")}`);
  }
  return t as HookTier;
}

const empty = {
  encode: (): Wire => ({}),
  decode: (): void => undefined,
};

// ---- the shared calls ----

/** Handshake and Health, the same on every service. */
export const COMMON_CODECS: {
  handshake: MethodCodec<HandshakeRequest, HandshakeResponse>;
  health: MethodCodec<Record<never, never>, HealthResponse>;
} = {
  handshake: {
    rpc: "Handshake",
    stream: false,
    encodeRequest: (r) => ({ ...r }),
    decodeRequest: (w) => ({
      core_version: str(w, "core_version"),
      proto_major: num(w, "proto_major"),
      proto_minor: num(w, "proto_minor"),
      capabilities: strList(w, "capabilities"),
    }),
    encodeResponse: (r) => ({ ...r }),
    decodeResponse: (w) => ({
      plugin_name: str(w, "plugin_name"),
      plugin_version: str(w, "plugin_version"),
      proto_major: num(w, "proto_major"),
      proto_minor: num(w, "proto_minor"),
      capabilities: strList(w, "capabilities"),
    }),
  },
  health: {
    rpc: "Health",
    stream: false,
    encodeRequest: () => ({}),
    decodeRequest: () => ({}),
    encodeResponse: (r) => ({ ...r }),
    decodeResponse: (w) => ({ ok: bool(w, "ok"), detail: str(w, "detail") }),
  },
};

// ---- one table per kind ----

function decodeWorkerEvent(w: Wire): WorkerEvent {
  if (w.started !== undefined) {
    return { started: { pid: num(msg(w, "started"), "pid") } };
  }
  if (w.stdout !== undefined) return { stdout: bytes(w, "stdout") };
  if (w.stderr !== undefined) return { stderr: bytes(w, "stderr") };
  if (w.exit !== undefined) {
    const e = msg(w, "exit");
    return {
      exit: {
        code: optNum(e, "code"),
        signal: optStr(e, "signal"),
        error: optStr(e, "error"),
      },
    };
  }
  throw new WireError("WorkerEvent: no event set");
}

function encodeWorkerEvent(ev: WorkerEvent): Wire {
  if ("started" in ev) return { started: { pid: ev.started.pid } };
  if ("stdout" in ev) return { stdout: Buffer.from(ev.stdout) };
  if ("stderr" in ev) return { stderr: Buffer.from(ev.stderr) };
  return { exit: present({ ...ev.exit }) };
}

/** Every method of every kind. */
export const CODECS: {
  [K in PluginKind]: MethodCodecs<PluginContracts[K]>;
} = {
  workspace: {
    prepare: {
      rpc: "Prepare",
      stream: false,
      encodeRequest: (r) => ({ ...r }),
      decodeRequest: (w) => ({
        spec_id: str(w, "spec_id"),
        task_id: str(w, "task_id"),
        spec_yaml: str(w, "spec_yaml"),
        hints: strMap(w, "hints"),
      }),
      encodeResponse: (r) => ({ ...r }),
      decodeResponse: (w) => ({
        workdir: str(w, "workdir"),
        env: strMap(w, "env"),
      }),
    },
    cleanup: {
      rpc: "Cleanup",
      stream: false,
      encodeRequest: (r) => ({ ...r }),
      decodeRequest: (w) => ({
        spec_id: str(w, "spec_id"),
        task_id: str(w, "task_id"),
        workdir: str(w, "workdir"),
      }),
      encodeResponse: empty.encode,
      decodeResponse: empty.decode,
    },
  },
  pool: {
    spawn: {
      rpc: "Spawn",
      stream: true,
      encodeRequest: (r) =>
        present({
          task_id: r.task_id,
          claim_token: r.claim_token,
          workdir: r.workdir,
          argv: r.argv === null ? null : { args: r.argv },
          shell: r.argv === null ? r.shell : null,
          prompt: r.prompt,
          env: r.env,
          timeout_ms: r.timeout_ms,
        }),
      decodeRequest: (w) => ({
        task_id: str(w, "task_id"),
        claim_token: str(w, "claim_token"),
        workdir: str(w, "workdir"),
        argv: w.argv === undefined ? null : strList(msg(w, "argv"), "args"),
        shell: optStr(w, "shell"),
        prompt: optStr(w, "prompt"),
        env: strMap(w, "env"),
        timeout_ms: optNum(w, "timeout_ms"),
      }),
      encodeResponse: encodeWorkerEvent,
      decodeResponse: decodeWorkerEvent,
    },
    kill: {
      rpc: "Kill",
      stream: false,
      encodeRequest: (r) => ({ ...r }),
      decodeRequest: (w) => ({
        task_id: str(w, "task_id"),
        claim_token: str(w, "claim_token"),
        grace_ms: num(w, "grace_ms"),
      }),
      encodeResponse: empty.encode,
      decodeResponse: empty.decode,
    },
  },
  router: {
    route: {
      rpc: "Route",
      stream: false,
      encodeRequest: (r) => ({ ...r }),
      decodeRequest: (w) => {
        const c = w.candidates ?? [];
        if (!Array.isArray(c)) {
          throw new WireError("candidates: expected a list");
        }
        return {
          task_id: str(w, "task_id"),
          requires: strMap(w, "requires"),
          candidates: c.map((x: Wire) => ({
            node_id: str(x, "node_id"),
            caps: strMap(x, "caps"),
          })),
        };
      },
      encodeResponse: (r) => ({ ...r }),
      decodeResponse: (w) => ({
        requires: strMap(w, "requires"),
        preferred_node_ids: strList(w, "preferred_node_ids"),
      }),
    },
  },
  provisioner: {
    allocate: {
      rpc: "Allocate",
      stream: false,
      encodeRequest: (r) => ({ ...r }),
      decodeRequest: (w) => ({
        request_id: str(w, "request_id"),
        hint: strMap(w, "hint"),
        join_token: str(w, "join_token"),
        bootstrap_url: str(w, "bootstrap_url"),
        deadline_ms: num(w, "deadline_ms"),
      }),
      encodeResponse: (r) => ({ ...r }),
      decodeResponse: (w) => ({ allocation_id: str(w, "allocation_id") }),
    },
    deallocate: {
      rpc: "Deallocate",
      stream: false,
      encodeRequest: (r) => ({ ...r }),
      decodeRequest: (w) => ({ allocation_id: str(w, "allocation_id") }),
      encodeResponse: empty.encode,
      decodeResponse: empty.decode,
    },
  },
  hooks: {
    onEvent: {
      rpc: "OnEvent",
      stream: false,
      encodeRequest: (r) => ({ ...r }),
      decodeRequest: (w) => ({
        seq: num(w, "seq"),
        emitter_node_id: str(w, "emitter_node_id"),
        kind: str(w, "kind"),
        ts: num(w, "ts"),
        payload_json: str(w, "payload_json"),
        dedup_key: str(w, "dedup_key"),
        tier: tier(w),
      }),
      encodeResponse: (r) => ({ ...r }),
      decodeResponse: (w) => ({ acked_seq: num(w, "acked_seq") }),
    },
  },
};
