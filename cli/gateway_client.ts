/**
 * Reads over etcd's JSON gateway (`POST /v3/kv/range`, `/v3/lease/timetolive`
 * on the client port) for the CLI's read-only commands. Loading the etcd3
 * client (grpc-js, proto-loader, protobufjs) costs ~150 ms of a cold start
 * (`nodes`: ~300 ms with it, measured 2026-12-01); these calls need only
 * `fetch`. It serves the two calls {@linkcode Store} makes for `nodes` and
 * `status`; writes and watches stay on gRPC (see `Ctx.withStore`).
 */
import { Buffer } from "node:buffer";
import type {
  IKeyValue,
  ILeaseTimeToLiveRequest,
  ILeaseTimeToLiveResponse,
  IRangeRequest,
  IRangeResponse,
  IResponseHeader,
} from "etcd3";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import { CliError } from "./errors.ts";
import { fetchFailure } from "./early_probe_lib.ts";

/** The gateway answered like something that is not one (404, not JSON): use gRPC. */
export class NoGatewayError extends Error {}

type Json = Record<string, unknown>;

const b64 = (b: Buffer | string | undefined) =>
  b === undefined ? undefined : Buffer.from(b).toString("base64");

/** The gateway's int64s are decimal strings (or absent when 0). */
const int = (v: unknown): string => v === undefined ? "0" : String(v);

function header(h: Json | undefined): IResponseHeader {
  return {
    cluster_id: int(h?.cluster_id),
    member_id: int(h?.member_id),
    revision: int(h?.revision),
    raft_term: int(h?.raft_term),
  };
}

function keyValue(kv: Json): IKeyValue {
  return {
    key: Buffer.from(String(kv.key ?? ""), "base64"),
    value: Buffer.from(String(kv.value ?? ""), "base64"),
    create_revision: int(kv.create_revision),
    mod_revision: int(kv.mod_revision),
    version: int(kv.version),
    lease: int(kv.lease),
  };
}

/** The subset of `Etcd3` that {@linkcode Store}'s reads use, over HTTP. */
export class GatewayClient {
  readonly kv = {
    range: (req: IRangeRequest, o?: { deadline?: Date }) =>
      this.#range(req, o?.deadline),
    txn: (): never => {
      throw new Error("GatewayClient: writes go over gRPC");
    },
  };
  readonly leaseClient = {
    leaseTimeToLive: (
      req: ILeaseTimeToLiveRequest,
      o?: { deadline?: Date },
    ) => this.#ttl(req, o?.deadline),
  };

  /** `endpoints` as `http://host:port` (early_probe.ts's httpEndpoints). */
  constructor(readonly endpoints: string[]) {}

  watch(): never {
    throw new Error("GatewayClient: watches go over gRPC");
  }

  close(): void {}

  async #range(
    req: IRangeRequest,
    deadline?: Date,
  ): Promise<IRangeResponse> {
    const res = await this.#post("/v3/kv/range", {
      key: b64(req.key),
      range_end: b64(req.range_end),
      limit: req.limit,
      revision: req.revision,
      count_only: req.count_only,
      serializable: req.serializable,
    }, deadline);
    const kvs = Array.isArray(res.kvs) ? res.kvs as Json[] : [];
    return {
      header: header(res.header as Json | undefined),
      kvs: kvs.map(keyValue),
      more: res.more === true,
      count: int(res.count),
    };
  }

  async #ttl(
    req: ILeaseTimeToLiveRequest,
    deadline?: Date,
  ): Promise<ILeaseTimeToLiveResponse> {
    const res = await this.#post(
      "/v3/lease/timetolive",
      { ID: String(req.ID) },
      deadline,
    );
    return {
      header: header(res.header as Json | undefined),
      ID: int(res.ID),
      TTL: res.TTL === undefined ? "0" : String(res.TTL),
      grantedTTL: int(res.grantedTTL),
      keys: [],
    };
  }

  /** The first endpoint that answers; unreachable only when none does. */
  async #post(path: string, body: Json, deadline?: Date): Promise<Json> {
    const ms = deadline ? Math.max(1, deadline.getTime() - Date.now()) : 1800;
    const signal = AbortSignal.timeout(ms);
    const reasons: string[] = [];
    for (const endpoint of this.endpoints) {
      let res: Response;
      try {
        res = await fetch(`${endpoint}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          signal,
        });
      } catch (err) {
        const reason = fetchFailure(err as Error, ms);
        // A port fetch refuses outright says nothing of etcd: ask over gRPC.
        if (reason === null) throw new NoGatewayError((err as Error).message);
        reasons.push(reason);
        if (signal.aborted) break;
        continue;
      }
      const text = await res.text();
      let json: Json;
      try {
        json = JSON.parse(text);
      } catch {
        throw new NoGatewayError(`${endpoint}${path}: HTTP ${res.status}`);
      }
      if (res.status === 404) {
        throw new NoGatewayError(`${endpoint}${path}: HTTP 404`);
      }
      if (!res.ok) {
        throw new CliError(
          `etcd error: ${String(json.message ?? json.error ?? res.status)}`,
        );
      }
      return json;
    }
    throw new EtcdUnreachableError(
      this.endpoints,
      [...new Set(reasons)].join("; "),
    );
  }
}
