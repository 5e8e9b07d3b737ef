/** A small cluster for end-to-end tests: one etcd, N real node processes, helpers to find things. */
import {
  cli,
  type EtcdServer,
  listEnvelopes,
  makeTempDir,
  type NodeOptions,
  type NodeProc,
  notYet,
  startEtcd,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import type { Envelope } from "../../node/schema.ts";
import { TERMINAL_STATES } from "../../node/schema.ts";

export interface Cluster extends AsyncDisposable {
  etcd: EtcdServer;
  nodes: Map<string, NodeProc>;
  node(id: string): NodeProc;
  add(opts: NodeOptions): Promise<NodeProc>;
}

/** Starts etcd and the named nodes (in parallel); everything is torn down on dispose. */
export async function startCluster(
  nodes: (string | NodeOptions)[],
  common: Partial<NodeOptions> = {},
): Promise<Cluster> {
  const etcd = await startEtcd();
  const map = new Map<string, NodeProc>();
  const add = async (o: NodeOptions) => {
    const n = await startNode(etcd, {
      ...common,
      ...o,
      env: { ...common.env, ...o.env },
    });
    map.set(o.nodeId, n);
    return n;
  };
  try {
    await Promise.all(
      nodes.map((n) => add(typeof n === "string" ? { nodeId: n } : n)),
    );
  } catch (e) {
    await Promise.all([...map.values()].map((n) => n[Symbol.asyncDispose]()));
    await etcd[Symbol.asyncDispose]();
    throw e;
  }
  return {
    etcd,
    nodes: map,
    node(id) {
      const n = map.get(id);
      if (!n) throw new Error(`no node ${id} in this cluster`);
      return n;
    },
    add,
    async [Symbol.asyncDispose]() {
      await Promise.all([...map.values()].map((n) => n[Symbol.asyncDispose]()));
      await etcd[Symbol.asyncDispose]();
    },
  };
}

/** Writes `yaml` to a temp file and dispatches it; returns the spec id and task ids. */
export async function dispatch(
  c: Cluster,
  yaml: string,
): Promise<{ spec_id: string; task_ids: string[] }> {
  const dir = await makeTempDir("boi-spec-");
  const file = `${dir}/spec.yaml`;
  await Deno.writeTextFile(file, yaml);
  const r = await cli(c.etcd, ["dispatch", file, "--json"]);
  if (r.code !== 0) throw new Error(`dispatch exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Waits until every task of the spec is terminal and returns the envelopes. */
export async function waitTerminal(
  c: Cluster,
  specId: string,
  timeoutMs = 30_000,
): Promise<Envelope[]> {
  return await waitFor(`every task of ${specId} terminal`, async () => {
    const all = (await listEnvelopes(c.etcd, { specId })).map((s) => s.value);
    const open = all.filter((e) => !TERMINAL_STATES.has(e.state));
    if (all.length === 0 || open.length > 0) {
      return notYet(open.map((e) => `${e.task_id}:${e.state}:${e.last_error}`));
    }
    return all;
  }, { timeoutMs, intervalMs: 100 });
}

/** The log file a task left on the node that ran it. */
export function logPath(n: NodeProc, e: Envelope): string {
  return `${n.dataDir}/logs/${e.spec_id}/${e.task_id}.log`;
}
