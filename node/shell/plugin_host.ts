/**
 * The node's plugins (SPEC §7): one supervisor per configured plugin, the
 * gRPC clients core uses for its workspace and pool, and the plugin records
 * published under `/boi/plugins/{node_id}/{name}`.
 */
import type { Pool, Workspace } from "../exec/contracts.ts";
import { GrpcPool } from "../exec/grpc_pool.ts";
import { GrpcWorkspace } from "../exec/grpc_workspace.ts";
import type { PluginConfig } from "../plugins/config.ts";
import { type PluginStatus, PluginSupervisor } from "../plugins/supervisor.ts";
import type { Logger } from "./log.ts";

/** What is stored at `/boi/plugins/{node_id}/{name}` (SPEC §2). */
export interface PluginRecord {
  kind: string;
  state: "starting" | "ready" | "unhealthy" | "unstable";
  crashes: number[];
  proto_minor: number | null;
  capabilities: string[];
  reason: string | null;
}

/** How long a call waits for a restarting plugin before it fails. */
const CALL_WAIT_MS = 15_000;

/** Maps the supervisor's fine-grained states onto the four of SPEC §2. */
export function recordState(s: PluginStatus["state"]): PluginRecord["state"] {
  switch (s) {
    case "ready":
      return "ready";
    case "starting":
    case "crashed":
    case "start_failed":
    case "stopping":
    case "stopped":
      return "starting";
    case "unhealthy":
      return "unhealthy";
    case "unstable":
    case "refused":
      return "unstable";
  }
}

export class PluginHost {
  readonly supervisors = new Map<string, PluginSupervisor>();

  constructor(
    configs: PluginConfig[],
    opts: {
      node_id: string;
      data_dir: string;
      core_version: string;
      log: Logger;
      /** Every state change and crash, for the node to publish. */
      onChange: (name: string, record: PluginRecord) => void;
    },
  ) {
    for (const c of configs) {
      const sup: PluginSupervisor = new PluginSupervisor({
        plugin: c.spec,
        node_id: opts.node_id,
        data_dir: opts.data_dir,
        core_version: opts.core_version,
        ready_timeout_ms: c.ready_timeout_ms,
        health_interval_ms: c.health_interval_ms,
        log: {
          log: (level, msg, fields) =>
            opts.log.log(level, msg, { plugin: c.spec.name, ...fields }),
        },
        onState: (st) => opts.onChange(c.spec.name, toRecord(st)),
        onCrash: () => opts.onChange(c.spec.name, toRecord(sup.status)),
      });
      this.supervisors.set(c.spec.name, sup);
    }
  }

  /** Starts every plugin; a plugin that fails to start leaves the node degraded, not dead. */
  async startAll(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.start()));
  }

  #byKind(kind: string): PluginSupervisor {
    for (const s of this.supervisors.values()) if (s.kind === kind) return s;
    throw new Error(`no ${kind} plugin configured`);
  }

  pool(): Pool {
    const s = this.#byKind("pool");
    return new GrpcPool({
      connection: () => s.connection({ wait_ms: CALL_WAIT_MS }),
    });
  }

  workspace(): Workspace {
    const s = this.#byKind("workspace");
    return new GrpcWorkspace({
      connection: () => s.connection({ wait_ms: CALL_WAIT_MS }),
    });
  }

  /** False while any plugin is not ready: the node then reports `health: degraded`. */
  healthy(): boolean {
    for (const s of this.supervisors.values()) {
      if (s.status.state !== "ready") return false;
    }
    return true;
  }

  records(): Map<string, PluginRecord> {
    return new Map(
      [...this.supervisors].map(([n, s]) => [n, toRecord(s.status)]),
    );
  }

  /** `boi plugin restart`: forgets the crash list and starts a fresh incarnation. */
  async restart(name: string): Promise<PluginStatus> {
    const s = this.supervisors.get(name);
    if (!s) {
      throw new Error(`no plugin named ${JSON.stringify(name)} on this node`);
    }
    return await s.restart();
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.supervisors.values()].map((s) => s.stop().catch(() => {})),
    );
  }
}

function toRecord(st: PluginStatus): PluginRecord {
  return {
    kind: st.kind,
    state: recordState(st.state),
    crashes: st.crashes,
    proto_minor: st.proto_minor,
    capabilities: st.capabilities,
    reason: st.reason,
  };
}
