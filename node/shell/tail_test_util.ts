/**
 * The tail handler's test fixture: the real router and handler on a real
 * HTTP server, a fake node with a real view, and a file system that records
 * every path the handler touches.
 * @module
 */
import type { Envelope } from "../schema.ts";
import { type CoreConfig, emptyView, type MutableView } from "../core/view.ts";
import { handleHttp } from "./http.ts";
import { Metrics } from "./metrics.ts";
import { Observability, type ObservedNode } from "./observability.ts";
import { denoFs, type TailFs } from "./tail.ts";

export function envelope(id: string, over: Partial<Envelope> = {}): Envelope {
  const spec = id.split(".")[0];
  return {
    task_id: id,
    spec_id: spec,
    state: "RUNNING",
    state_version: 1,
    requires: {},
    run: "true",
    prompt: null,
    env: {},
    timeout_ms: null,
    depends_on: [],
    attempts: 1,
    max_attempts: 3,
    retries_left: 0,
    claimant_node_id: "n1",
    claim_lease_id: "1",
    fence: 5,
    last_error: null,
    exit_code: null,
    dispatched_at: 0,
    started_at: 1,
    finished_at: null,
    ran_on: null,
    cancel_requested: false,
    not_before: null,
    ...over,
  };
}

export const versioned = <T>(value: T) => ({
  value,
  mod_revision: 1,
  create_revision: 1,
  lease: "0",
});

export interface Fixture extends AsyncDisposable {
  url: string;
  port: number;
  dataDir: string;
  root: string;
  view: MutableView;
  touched: { op: string; path: string }[];
  obs: Observability;
}

export async function fixture(): Promise<Fixture> {
  const dataDir = await Deno.makeTempDir({ prefix: "boi-tail-" });
  const root = await Deno.realPath(dataDir);
  await Deno.mkdir(`${dataDir}/logs/s1`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/logs/s1/s1.t.log`, "hello\nworld\n");
  await Deno.writeTextFile(`${dataDir}/secret.log`, "SECRET\n");
  await Deno.mkdir(`${dataDir}/outside/s2`, { recursive: true });
  await Deno.writeTextFile(`${dataDir}/outside/s2/s2.t.log`, "SECRET\n");
  // A log that is a symlink out of the root, and a spec dir that is one.
  await Deno.symlink(`${root}/secret.log`, `${dataDir}/logs/s1/s1.link.log`);
  await Deno.symlink(`${root}/outside/s2`, `${dataDir}/logs/s2`);
  const view = emptyView({ node_id: "n1" } as CoreConfig);
  view.lease_id = "1";
  view.nodes.set(
    "n1",
    versioned({
      node_id: "n1",
      addr: "127.0.0.1:1",
      version: "0",
      started_at: 0,
      pid: 1,
    }),
  );
  view.tasks.set("s1.t", versioned(envelope("s1.t")));
  view.workers.set("s1.t", {
    task_id: "s1.t",
    fence: 5,
    attempt: 1,
    phase: "running",
    pid: 1,
    started_at: 1,
    result: null,
    killing: false,
    lease: "1",
    workdir: "/w",
    ws_env: {},
  });
  const touched: { op: string; path: string }[] = [];
  const fs: TailFs = {
    realPath: (
      p,
    ) => (touched.push({ op: "realPath", path: p }), denoFs.realPath(p)),
    lstat: (p) => (touched.push({ op: "lstat", path: p }), denoFs.lstat(p)),
    open: (p) => (touched.push({ op: "open", path: p }), denoFs.open(p)),
  };
  const obs = new Observability({ tailPollMs: 20, sweepFirstDelayMs: 1e9 });
  const node: ObservedNode = {
    view,
    metrics: new Metrics(),
    deps: { config: { node_id: "n1", data_dir: dataDir } },
    log: { info() {}, warn() {} },
    health: () => ({ ok: true, reason: "ok" }),
  };
  obs.attach(node);
  const realEnv = obs.tailEnv.bind(obs);
  obs.tailEnv = (n) => ({ ...realEnv(n), fs });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => handleHttp(req, () => node, obs),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    port: server.addr.port,
    dataDir,
    root,
    view,
    touched,
    obs,
    async [Symbol.asyncDispose]() {
      obs.close();
      await server.shutdown();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Sends `target` byte for byte (no client-side normalization) and reads the answer. */
export async function rawGet(
  port: number,
  target: string,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      ),
    );
    const text = await new Response(conn.readable).text();
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } finally {
    try {
      conn.close();
    } catch { /* closed by reading to the end */ }
  }
}

/** Hostile ids as sent after `/internal/tail/`. */
