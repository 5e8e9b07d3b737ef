/**
 * The Pool contract over gRPC: core's client of a pool plugin. Spawn is not
 * retried here: a plugin that lost its state would start the task twice.
 * @module
 */
import type {
  KillRequest,
  Pool,
  SpawnRequest,
  WorkerEvent,
} from "./contracts.ts";
import { CODECS } from "./grpc_codec.ts";
import { status } from "@grpc/grpc-js";
import {
  type ConnectionSource,
  newCorrId,
  PluginCallError,
  resolveConnection,
} from "./grpc_client.ts";

/** Options of {@linkcode GrpcPool}. */
export interface GrpcPoolOptions {
  /** The pool plugin's connection, or where to get the current one. */
  connection: ConnectionSource;
  /**
   * Deadline of a Kill call.
   * @default 10000
   */
  kill_timeout_ms?: number;
}

/** A {@linkcode Pool} whose workers run in a pool plugin. */
export class GrpcPool implements Pool {
  readonly #source: ConnectionSource;
  readonly #killTimeoutMs: number;

  constructor(options: GrpcPoolOptions) {
    this.#source = options.connection;
    this.#killTimeoutMs = options.kill_timeout_ms ?? 10_000;
  }

  /**
   * Streams the worker's events; a broken stream, or one that ends without
   * its `exit` event, throws PluginCallError.
   */
  async *spawn(req: SpawnRequest): AsyncGenerator<WorkerEvent> {
    const conn = await resolveConnection(this.#source);
    const corr_id = newCorrId(req.task_id);
    let exited = false;
    for await (const ev of conn.stream(CODECS.pool.spawn, req, { corr_id })) {
      if ("exit" in ev) exited = true;
      yield ev;
    }
    if (!exited) {
      throw new PluginCallError(
        "pool",
        "Spawn",
        status.DATA_LOSS,
        "the stream ended without an exit event",
        corr_id,
      );
    }
  }

  async kill(req: KillRequest): Promise<void> {
    const conn = await resolveConnection(this.#source);
    await conn.unary(CODECS.pool.kill, req, {
      corr_id: newCorrId(req.task_id),
      timeout_ms: this.#killTimeoutMs,
    });
  }
}
