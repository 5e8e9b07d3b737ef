/**
 * The pool client core uses, aware of `boi plugin restart pool`. A restart
 * must not cost the running task a retry: the old incarnation's workers die
 * with it (the reference pool kills them on SIGTERM), so each Spawn stream of
 * that incarnation is reported as *attempt lost* — the task is re-queued
 * without spending a retry, as when a pool is SIGKILLed — instead of passing
 * on the `exit{signal: SIGTERM}` the dying pool sends, which would count as
 * the task's own failure. The stream is held until it ends, so the task is
 * re-queued only after its old process is gone.
 * @module
 */
import type {
  KillRequest,
  Pool,
  SpawnRequest,
  WorkerEvent,
} from "../exec/contracts.ts";
import { GrpcPool } from "../exec/grpc_pool.ts";
import type { PluginConnection } from "../exec/grpc_client.ts";

/** What this module needs of the pool's supervisor. */
export interface PoolSource {
  connection(options: { wait_ms?: number }): Promise<PluginConnection>;
  /** The incarnation serving now. */
  readonly incarnation: number;
}

interface Stream {
  task_id: string;
  /** Incarnation that serves it; null until it has a connection. */
  incarnation: number | null;
  /** Set by a restart: why this stream's end is an attempt lost. */
  cut: string | null;
}

/** A Pool over the supervisor's current incarnation; see the module doc. */
export class RestartAwarePool implements Pool {
  readonly #streams = new Set<Stream>();
  /** Streams of incarnations up to this one are cut (0: none). */
  #cutThrough = 0;
  #cutReason = "";
  readonly #kill: GrpcPool;

  constructor(readonly source: PoolSource, readonly wait_ms: number) {
    this.#kill = new GrpcPool({
      connection: () => source.connection({ wait_ms }),
    });
  }

  async *spawn(req: SpawnRequest): AsyncGenerator<WorkerEvent> {
    const s: Stream = { task_id: req.task_id, incarnation: null, cut: null };
    this.#streams.add(s);
    const inner = new GrpcPool({
      connection: async () => {
        const conn = await this.source.connection({ wait_ms: this.wait_ms });
        s.incarnation = this.source.incarnation;
        // Connected to an incarnation a restart is already replacing.
        if (s.incarnation <= this.#cutThrough) s.cut = this.#cutReason;
        return conn;
      },
    });
    try {
      try {
        for await (const ev of inner.spawn(req)) {
          // A cut stream's exit is the restart's doing, not the task's.
          if ("exit" in ev && s.cut !== null) continue;
          yield ev;
        }
      } catch (e) {
        if (s.cut !== null) throw new Error(s.cut);
        throw e;
      }
      if (s.cut !== null) throw new Error(s.cut);
    } finally {
      this.#streams.delete(s);
    }
  }

  kill(req: KillRequest): Promise<void> {
    return this.#kill.kill(req);
  }

  /**
   * Called before a restart: every stream of the current incarnation (and any
   * still connecting to it) ends as an attempt lost. Returns their task ids.
   */
  cutForRestart(reason: string): string[] {
    this.#cutThrough = this.source.incarnation;
    this.#cutReason = reason;
    const cut: string[] = [];
    for (const s of this.#streams) {
      if (s.incarnation !== null && s.incarnation <= this.#cutThrough) {
        s.cut = reason;
        cut.push(s.task_id);
      }
    }
    return cut.sort();
  }
}
