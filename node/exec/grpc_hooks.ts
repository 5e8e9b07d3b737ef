/** The Hooks contract over gRPC: core's client of a hooks plugin. */
import type { HookAck, HookEvent, Hooks } from "../plugins/contracts.ts";
import { CODECS } from "./grpc_codec.ts";
import {
  type ConnectionSource,
  newCorrId,
  resolveConnection,
} from "./grpc_client.ts";

/** Options of {@linkcode GrpcHooks}. */
export interface GrpcHooksOptions {
  /** The hooks plugin's connection, or where to get the current one. */
  connection: ConnectionSource;
  /**
   * Deadline of one OnEvent call; an unacked event is redelivered later.
   * @default 10000
   */
  timeout_ms?: number;
}

/** A {@linkcode Hooks} sink served by a hooks plugin. */
export class GrpcHooks implements Hooks {
  readonly #source: ConnectionSource;
  readonly #timeoutMs: number;
  #plainTurn: Promise<unknown> = Promise.resolve();

  constructor(options: GrpcHooksOptions) {
    this.#source = options.connection;
    this.#timeoutMs = options.timeout_ms ?? 10_000;
  }

  /**
   * Core keeps several calls open (node/hooks/in_flight.ts). On the Mux
   * stream they reach the plugin's handler in the order sent; plain RPCs are
   * separate HTTP/2 streams with no such promise, so a 1.0 plugin is served
   * one call at a time, as before.
   */
  async onEvent(ev: HookEvent): Promise<HookAck> {
    const conn = await resolveConnection(this.#source);
    const call = () =>
      conn.unary(CODECS.hooks.onEvent, ev, {
        corr_id: newCorrId(`${ev.emitter_node_id}.${ev.seq}`),
        timeout_ms: this.#timeoutMs,
      });
    if (conn.transport === "mux") return await call();
    const run = this.#plainTurn.then(call);
    this.#plainTurn = run.catch(() => {});
    return await run;
  }
}
