/** The Router contract over gRPC: core's client of a router plugin. */
import type {
  Router,
  RouteRequest,
  RouteResponse,
} from "../plugins/contracts.ts";
import { CODECS } from "./grpc_codec.ts";
import {
  type ConnectionSource,
  newCorrId,
  resolveConnection,
} from "./grpc_client.ts";

/** Options of {@linkcode GrpcRouter}. */
export interface GrpcRouterOptions {
  /** The router plugin's connection, or where to get the current one. */
  connection: ConnectionSource;
  /**
   * Deadline of a Route call: routing sits on the claim path, so keep it short.
   * @default 2000
   */
  timeout_ms?: number;
}

/** A {@linkcode Router} served by a router plugin. */
export class GrpcRouter implements Router {
  readonly #source: ConnectionSource;
  readonly #timeoutMs: number;

  constructor(options: GrpcRouterOptions) {
    this.#source = options.connection;
    this.#timeoutMs = options.timeout_ms ?? 2_000;
  }

  async route(req: RouteRequest): Promise<RouteResponse> {
    const conn = await resolveConnection(this.#source);
    return await conn.unary(CODECS.router.route, req, {
      corr_id: newCorrId(req.task_id),
      timeout_ms: this.#timeoutMs,
    });
  }
}
