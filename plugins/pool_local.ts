/**
 * Reference pool: local processes via node/exec/local_pool.ts — one process
 * group per worker (Kill and the timeout take the whole tree), Spawn
 * idempotent per (task_id, claim_token) with a re-attach that replays output.
 *
 * `BOI_POOL_MODE=noop` completes every task at once with exit 0 and runs
 * nothing: for benchmarking the dispatcher itself.
 *
 * Tasks start through the pool's spawner, a perl process (local_pool.ts): the
 * plugin runs only `perl`, and signals only through it. A spawner's death is
 * the pool's crash: the plugin exits at once (its running tasks end as
 * "attempt lost" on the node; the next incarnation reaps their groups).
 *
 * Run: `deno run -P=plugin-pool --allow-net=unix:<socket>
 * --allow-read=<data dir> --allow-write=<data dir> plugins/pool_local.ts`
 * (the set allows running `perl` and the env list workers inherit).
 * @module
 */
import { LocalPool } from "../node/exec/local_pool.ts";
import type {
  KillRequest,
  PluginHandlers,
  Pool,
  SpawnRequest,
  WorkerEvent,
} from "./sdk/mod.ts";
import {
  pluginEnv,
  PluginError,
  PluginLogger,
  pluginLogger,
  servePlugin,
} from "./sdk/mod.ts";

/** How the pool runs workers. */
export type PoolMode = "local" | "noop";

/** Options of {@linkcode localPoolPlugin}. */
export interface LocalPoolPluginOptions {
  /**
   * `local` runs processes; `noop` completes every task at once.
   * @default "local"
   */
  mode?: PoolMode;
  /**
   * File recording the live process groups, so the next incarnation can reap
   * workers a crashed one left behind. `null`: not recorded.
   * @default null
   */
  state_file?: string | null;
  /** @default a logger on stderr */
  log?: PluginLogger;
}

/** A pool's handlers plus what the SDK needs around them. */
export interface PoolPlugin {
  handlers: PluginHandlers<Pool>;
  capabilities: string[];
  /** Kills the workers that still run (the plugin is going away; they would be orphans). */
  onShutdown(): Promise<void>;
  /**
   * Starts the spawner (throws if it cannot run) and kills the process groups
   * a previous, crashed incarnation recorded.
   */
  reapStale(): Promise<void>;
}

/**
 * A Spawn stream that fails UNAVAILABLE (a lost attempt: re-queued, no retry
 * spent) instead of ending with the spawner's `worker lost` exit while the
 * plugin reaps and exits: an exit that ends the stream cleanly reads as the
 * task's own end, and spent its retry or failed it (review of f936da0).
 */
async function* lostOnDeath(
  events: AsyncIterable<WorkerEvent>,
): AsyncIterable<WorkerEvent> {
  for await (const ev of events) {
    if (dying && "exit" in ev) {
      throw new PluginError(
        "UNAVAILABLE",
        `the pool's spawner died: the attempt is lost (${ev.exit.error})`,
      );
    }
    yield ev;
  }
}

/** Set once the spawner died: the plugin is on its way out (one pool per process). */
let dying = false;

/** The pool plugin's logic, shared by pool_local.ts and the mock. */
export function localPoolPlugin(
  options: LocalPoolPluginOptions = {},
): PoolPlugin {
  const log = options.log ?? new PluginLogger({ plugin: "pool_local" });
  if ((options.mode ?? "local") === "noop") return noopPool();
  const pool = new LocalPool({
    state_file: options.state_file ?? null,
    onReaped: (pgids) =>
      log.warn("reaped the worker groups a crashed incarnation left", {
        pgids,
      }),
    warn: (msg) => log.error(msg),
    onSpawnerDeath(reason) {
      // Its tasks' output and exit statuses are gone with it: crash like a
      // pool, so the node re-queues them as attempts lost (no retry spent).
      // Their groups first: the new spawner has the reap requests, and
      // closing it waits until it has done them (2 s at most).
      log.error("the spawner died: exiting (its tasks are lost)", { reason });
      dying = true;
      const exit = () => Deno.exit(70);
      setTimeout(exit, 2000);
      pool.close().then(exit, exit);
    },
  });
  return {
    capabilities: ["reattach", "process_groups", "timeout"],
    handlers: {
      // A second Spawn of the same key re-attaches and replays.
      spawn: (req: SpawnRequest): AsyncIterable<WorkerEvent> => {
        // Not on the spawner that is reaping before the exit: it would be killed.
        if (dying) {
          throw new PluginError("UNAVAILABLE", "the pool is restarting");
        }
        return lostOnDeath(pool.spawn(req));
      },
      kill: (req: KillRequest) => pool.kill(req),
    },
    async onShutdown() {
      const n = pool.runningCount();
      if (n > 0) log.info("killing workers on shutdown", { workers: n });
      await pool.shutdown(1000);
    },
    async reapStale() {
      // The spawner reaps what the state file names as it starts; starting
      // it now also makes the plugin fail at start if perl cannot run.
      pool.ready();
      await Promise.resolve();
    },
  };
}

/** Every Spawn "runs" and exits 0 at once, with no process: pid 0, no output. */
function noopPool(): PoolPlugin {
  return {
    capabilities: ["reattach", "noop"],
    handlers: {
      async *spawn() {
        yield { started: { pid: 0 } };
        yield { exit: { code: 0, signal: null, error: null } };
      },
      kill() {},
    },
    async onShutdown() {},
    async reapStale() {},
  };
}

/** `BOI_POOL_MODE`, checked. */
export function poolModeFromEnv(): PoolMode {
  const mode = Deno.env.get("BOI_POOL_MODE") || "local";
  if (mode !== "local" && mode !== "noop") {
    throw new Error(
      `BOI_POOL_MODE must be local or noop: got ${JSON.stringify(mode)}`,
    );
  }
  return mode;
}

if (import.meta.main) {
  const env = pluginEnv();
  const mode = poolModeFromEnv();
  const log = pluginLogger("pool_local");
  const pool = localPoolPlugin({
    mode,
    state_file: `${env.data_dir}/pool_local.groups.json`,
    log,
  });
  try {
    await pool.reapStale();
  } catch (e) {
    log.error(
      `cannot start the spawner: ${(e as Error).message}: ` +
        "the reference pool runs tasks through perl (Debian's perl-base)",
    );
    Deno.exit(1);
  }
  await servePlugin({
    kind: "pool",
    name: "pool_local",
    version: "1.0.0",
    capabilities: pool.capabilities,
    onShutdown: pool.onShutdown,
    ...pool.handlers,
  });
}
