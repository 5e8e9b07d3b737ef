/** The Workspace contract over gRPC: core's client of a workspace plugin. */
import type {
  CleanupRequest,
  PrepareRequest,
  PrepareResponse,
  Workspace,
} from "./contracts.ts";
import { CODECS } from "./grpc_codec.ts";
import {
  type ConnectionSource,
  newCorrId,
  resolveConnection,
} from "./grpc_client.ts";
import { prepareWithSpecCache } from "./spec_cache_client.ts";

/** Options of {@linkcode GrpcWorkspace}. */
export interface GrpcWorkspaceOptions {
  /** The workspace plugin's connection, or where to get the current one. */
  connection: ConnectionSource;
  /**
   * Deadline of Prepare and Cleanup (a git checkout can take a while).
   * @default 60000
   */
  timeout_ms?: number;
  /**
   * With a plugin that announced `spec_cache`: how many specs core remembers
   * having sent in full per connection (least recently prepared forgotten
   * first, then sent in full again). Bounds the YAML held, not correctness.
   * @default 32
   */
  spec_cache_specs?: number;
}

/** A {@linkcode Workspace} served by a workspace plugin. */
export class GrpcWorkspace implements Workspace {
  readonly #source: ConnectionSource;
  readonly #timeoutMs: number;
  readonly #specCacheSpecs: number;

  constructor(options: GrpcWorkspaceOptions) {
    this.#source = options.connection;
    this.#timeoutMs = options.timeout_ms ?? 60_000;
    this.#specCacheSpecs = options.spec_cache_specs ?? 32;
  }

  /**
   * Asks the plugin for a workdir; refuses one that is not an absolute path.
   * The spec's YAML goes once per connection to a `spec_cache` plugin.
   */
  async prepare(req: PrepareRequest): Promise<PrepareResponse> {
    const conn = await resolveConnection(this.#source);
    const opts = {
      corr_id: newCorrId(req.task_id),
      timeout_ms: this.#timeoutMs,
    };
    const res = await prepareWithSpecCache(
      conn,
      req,
      this.#specCacheSpecs,
      (codec, r) => conn.unary(codec, r, opts),
    );
    if (!res.workdir.startsWith("/")) {
      throw new Error(
        `workspace plugin Prepare: workdir must be an absolute path: got ${
          JSON.stringify(res.workdir)
        }`,
      );
    }
    return res;
  }

  async cleanup(req: CleanupRequest): Promise<void> {
    const conn = await resolveConnection(this.#source);
    await conn.unary(CODECS.workspace.cleanup, req, {
      corr_id: newCorrId(req.task_id),
      timeout_ms: this.#timeoutMs,
    });
  }
}
