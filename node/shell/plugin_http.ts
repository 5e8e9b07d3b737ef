/**
 * `POST /internal/plugins/{name}/restart` (SPEC §7, `boi plugin restart`):
 * forgets the plugin's crash list and starts a fresh incarnation, then
 * answers with its status once that first attempt settles.
 */
import type { PluginStatus } from "../plugins/supervisor.ts";
import { type PluginRecord, recordState } from "./plugin_host.ts";

export const PLUGINS_PATH = "/internal/plugins/";

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** What this module uses of a BoiNode. */
export interface PluginNode {
  readonly deps: {
    readonly config: { readonly node_id: string };
    readonly plugins?: {
      readonly supervisors: ReadonlyMap<string, unknown>;
      restart(
        name: string,
      ): Promise<PluginStatus & { attached?: boolean; lost_tasks?: string[] }>;
    } | null;
  };
}

/** The answer of a restart. */
export interface RestartAnswer {
  node_id: string;
  name: string;
  kind: string;
  state: PluginRecord["state"];
  /** The supervisor's own state, e.g. `refused` or `start_failed`. */
  detail_state: PluginStatus["state"];
  reason: string | null;
  incarnation: number;
  pid: number | null;
  proto_minor: number | null;
  capabilities: string[];
  /** Attach mode: the sidecar was reconnected to; core restarts no process. */
  attached: boolean;
  /**
   * What the restart did to the plugin's running work: a pool is not drained,
   * its running attempts end as "attempt lost" (re-queued, no retry spent).
   * These are their task ids; empty for other kinds.
   */
  lost_tasks: string[];
}

/** Routes `/internal/plugins/...`; `path` is the raw, already normalized path. */
export async function handlePluginHttp(
  req: Request,
  path: string,
  node: PluginNode | null,
): Promise<Response> {
  const m = /^\/internal\/plugins\/([^/]*)\/restart$/.exec(path);
  if (m === null) return json(404, { error: "not found" });
  if (req.method !== "POST") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { allow: "POST" },
    });
  }
  const name = m[1];
  if (!NAME.test(name)) {
    return json(400, {
      error: `plugin name must match ${NAME.source}: got ${
        JSON.stringify(name.slice(0, 80))
      }`,
    });
  }
  if (node === null) return json(503, { error: "starting" });
  const host = node.deps.plugins ?? null;
  const node_id = node.deps.config.node_id;
  if (host === null || !host.supervisors.has(name)) {
    return json(404, {
      error: `no plugin named ${JSON.stringify(name)} on node ${node_id}`,
    });
  }
  let st: PluginStatus & { attached?: boolean; lost_tasks?: string[] };
  try {
    st = await host.restart(name);
  } catch (e) {
    return json(500, { error: (e as Error).message });
  }
  const answer: RestartAnswer = {
    node_id,
    name,
    kind: st.kind,
    state: recordState(st.state),
    detail_state: st.state,
    reason: st.reason,
    incarnation: st.incarnation,
    pid: st.pid,
    proto_minor: st.proto_minor,
    capabilities: st.capabilities,
    attached: st.attached ?? false,
    lost_tasks: st.lost_tasks ?? [],
  };
  return json(200, answer);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}
