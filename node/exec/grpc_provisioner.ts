/** The Provisioner contract over gRPC: core's client of a provisioner plugin. */
import type {
  AllocateRequest,
  AllocateResponse,
  DeallocateRequest,
  Provisioner,
} from "../plugins/contracts.ts";
import { CODECS } from "./grpc_codec.ts";
import {
  type ConnectionSource,
  newCorrId,
  resolveConnection,
} from "./grpc_client.ts";

/** Options of {@linkcode GrpcProvisioner}. */
export interface GrpcProvisionerOptions {
  /** The provisioner plugin's connection, or where to get the current one. */
  connection: ConnectionSource;
  /**
   * Deadline of Allocate (at most a quarter of its `deadline_ms`) and
   * Deallocate; the node joins later, on its own.
   * @default 30000
   */
  timeout_ms?: number;
}

/** A {@linkcode Provisioner} served by a provisioner plugin. */
export class GrpcProvisioner implements Provisioner {
  readonly #source: ConnectionSource;
  readonly #timeoutMs: number;

  constructor(options: GrpcProvisionerOptions) {
    this.#source = options.connection;
    this.#timeoutMs = options.timeout_ms ?? 30_000;
  }

  async allocate(req: AllocateRequest): Promise<AllocateResponse> {
    const conn = await resolveConnection(this.#source);
    // At most a quarter of the request's deadline: an answer lost to a
    // timeout still leaves time to ask again (node/shell/provisioning.ts).
    const quarter = Math.max(1000, Math.floor(req.deadline_ms / 4));
    return await conn.unary(CODECS.provisioner.allocate, req, {
      corr_id: newCorrId(req.request_id),
      timeout_ms: Math.min(this.#timeoutMs, quarter),
    });
  }

  async deallocate(req: DeallocateRequest): Promise<void> {
    const conn = await resolveConnection(this.#source);
    await conn.unary(CODECS.provisioner.deallocate, req, {
      corr_id: newCorrId(req.allocation_id),
      timeout_ms: this.#timeoutMs,
    });
  }
}
