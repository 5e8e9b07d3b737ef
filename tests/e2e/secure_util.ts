/** Shared steps of the secure_* tests: init, mint, join, and a snapshot of everything in etcd. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  cli,
  type EtcdLike,
  freePort,
  type HasClient,
  type NodeOptions,
  type NodeProc,
  startNode,
} from "../harness/mod.ts";
import type { RunResult } from "../harness/cli_run.ts";

/**
 * A snapshot taken once the store has stopped moving (plugin records and
 * caps settle shortly after a node registers): two equal reads 1 s apart.
 */
export async function settled(
  etcd: HasClient,
): Promise<{ revision: number; keys: Record<string, string> }> {
  let prev = await snapshot(etcd);
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const next = await snapshot(etcd);
    if (next.revision === prev.revision) return next;
    prev = next;
  }
  throw new Error(`etcd kept changing: revision ${prev.revision}`);
}

/** Every key with its value and mod revision, and the store's revision: "no trace" is equality of two of these. */
export async function snapshot(
  etcd: HasClient,
): Promise<{ revision: number; keys: Record<string, string> }> {
  const res = await etcd.client().kv.range({
    key: Buffer.from([0]),
    range_end: Buffer.from([0]),
  });
  const keys: Record<string, string> = {};
  for (const kv of res.kvs) {
    keys[kv.key.toString()] = `${kv.mod_revision}:${kv.value.toString()}`;
  }
  return { revision: Number(res.header.revision), keys };
}

/** Runs a CLI command that must succeed; returns its stdout. */
export async function ok(
  etcd: EtcdLike | string | null,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const r = await cli(etcd, args, { env });
  assert.equal(
    r.code,
    0,
    `boi ${args.join(" ")} exited ${r.code}: ${r.stderr}`,
  );
  return r.stdout;
}

/** `cluster init` on `admin`; returns the fingerprint. */
export async function init(
  etcd: EtcdLike,
  admin: NodeProc,
  extra: string[] = [],
): Promise<string> {
  const out = await ok(etcd, [
    "cluster",
    "init",
    "--node",
    admin.httpAddr,
    ...extra,
  ]);
  const fp = out.trim().split("\n")[0];
  assert.match(fp, /^[0-9a-f]{64}$/);
  return fp;
}

/** `token mint` on `admin`; returns the token. */
export async function mint(
  etcd: EtcdLike,
  admin: NodeProc,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<string> {
  const out = await ok(etcd, [
    "token",
    "mint",
    "--node",
    admin.httpAddr,
    ...args,
  ], env);
  const token = out.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `not a JWT: ${out}`);
  return token;
}

/** The options that start an admin node with a join listener on a free port. */
export function adminNode(
  nodeId: string,
  extra: Partial<NodeOptions> = {},
): NodeOptions & { joinPort: number } {
  const joinPort = freePort();
  return {
    nodeId,
    ...extra,
    env: { BOI_JOIN_ADDR: `127.0.0.1:${joinPort}`, ...extra.env },
    joinPort,
  };
}

/** Starts a node that joins with `token` through `https://localhost:<joinPort>`. */
export function joiner(
  etcd: EtcdLike,
  nodeId: string,
  token: string,
  joinPort: number,
  extra: Partial<NodeOptions> = {},
): Promise<NodeProc> {
  return startNode(etcd, {
    nodeId,
    ...extra,
    env: {
      BOI_JOIN_TOKEN: token,
      BOI_BOOTSTRAP_URL: `https://localhost:${joinPort}`,
      ...extra.env,
    },
  });
}

/** Runs a node expected to exit on its own (a refused join); returns its exit code and stderr lines. */
export async function refusedJoin(
  etcd: EtcdLike,
  nodeId: string,
  env: Record<string, string>,
  extra: Partial<NodeOptions> = {},
): Promise<{ code: number; text: string }> {
  await using n = await startNode(etcd, {
    nodeId,
    ...extra,
    env: { ...env, ...extra.env },
    waitRegistered: false,
  });
  // A join that was not refused leaves a running node: say so, do not hang.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    n.exited,
    new Promise<null>((r) => timer = setTimeout(() => r(null), 30_000)),
  ]).finally(() => clearTimeout(timer));
  if (status === null) {
    return {
      code: -1,
      text: `still running 30 s after start (it joined?): ${n.logTail(50)}`,
    };
  }
  return { code: status.code, text: n.logTail(50) };
}

export type { RunResult };
