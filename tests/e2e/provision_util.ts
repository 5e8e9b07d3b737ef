/** Shared steps of the provisioning tests (issue 14): provisioner plugin entries, records, events. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  type HasClient,
  listEnvelopes,
  type LogLine,
  type NodeOptions,
  type NodeProc,
  notYet,
  REPO_ROOT,
  waitFor,
} from "../harness/mod.ts";
import { Keys } from "../../node/keys.ts";
import { ProvisionFailures, ProvisionRequest } from "../../node/schema.ts";
import { pluginArgv, pluginsFile } from "./plugin_util.ts";
import { adminNode } from "./secure_util.ts";

export const MAC = { "x-test-pool": "mac" };

/** A 5-task spec whose tasks need a mac node. */
export function macSpec(name: string, tasks = 5): string {
  const lines = [`name: ${name}`, "requires: { x-test-pool: mac }", "tasks:"];
  for (let i = 0; i < tasks; i++) {
    lines.push(`  - id: t${i}`, `    run: echo mac ${i}`);
  }
  return lines.join("\n") + "\n";
}

/** The plugins-file entry of the reference provisioner, its nodes run like the harness's. */
export function localProvisionerEntry(
  nodeEnv: Record<string, string> = {},
): Record<string, unknown> {
  return {
    argv: pluginArgv("provisioner_local.ts", [
      `--allow-run=${Deno.execPath()}`,
      "--allow-env=BOI_*,GRPC_*,PATH,HOME,DENO_DIR,TMPDIR",
    ]),
    env: {
      BOI_PROVISION_NODE_ARGV: JSON.stringify([
        Deno.execPath(),
        "run",
        "-q",
        `--config=${REPO_ROOT}/deno.json`,
        "-P=node-test",
        `${REPO_ROOT}/node/main.ts`,
      ]),
      BOI_PROVISION_NODE_ENV: JSON.stringify({
        BOI_LEASE_TTL_S: "2",
        BOI_LOG_LEVEL: "debug",
        ...nodeEnv,
      }),
    },
  };
}

/**
 * The options of an admin node (join listener on a free port) whose
 * provisioner plugin is `provisioner`, a plugins-file entry: the node that
 * opens provisioning requests and starts what they ask for.
 */
export async function provisionerAdmin(
  nodeId: string,
  provisioner: Record<string, unknown>,
  extra: Partial<NodeOptions> = {},
): Promise<NodeOptions & { joinPort: number }> {
  const plugins = await pluginsFile({ provisioner });
  return adminNode(nodeId, {
    ...extra,
    env: { BOI_PLUGINS: plugins, ...extra.env },
  });
}

/**
 * Waits until the spec's `tasks` tasks are all DONE and asserts they ran on
 * one node (one provisioned node serves one request); returns that node's id.
 */
export async function doneOnOneNode(
  etcd: HasClient,
  specId: string,
  tasks: number,
  what: string,
): Promise<string> {
  const done = await waitFor(
    what,
    async () => {
      const envs = await listEnvelopes(etcd, { specId });
      return envs.length === tasks &&
          envs.every((e) => e.value.state === "DONE")
        ? envs
        : notYet(envs.map((e) => `${e.value.state} ${e.value.last_error}`));
    },
    { timeoutMs: 60_000 },
  );
  const ranOn = new Set(done.map((e) => e.value.ran_on));
  assert.equal(ranOn.size, 1);
  return [...ranOn][0]!;
}

/** The mock provisioner, with `env` faults and its call record in `record`. */
export function mockProvisionerEntry(
  record: string,
  env: Record<string, string> = {},
): Record<string, unknown> {
  return {
    argv: pluginArgv("mock.ts"),
    env: { BOI_MOCK_RECORD: record, ...env },
  };
}

/** One line of the mock's call record. */
export interface MockCall {
  ts: number;
  rpc: string;
  corr_id: string;
}

export async function mockCalls(record: string): Promise<MockCall[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(record);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
    .filter((c: MockCall) => c.rpc === "Allocate" || c.rpc === "Deallocate");
}

/** Every record of a collection, decoded. */
async function listDir<T>(
  etcd: HasClient,
  dir: string,
  parse: (v: unknown) => T,
): Promise<{ key: string; value: T; lease: string }[]> {
  const end = Buffer.from(dir);
  end[end.length - 1]++;
  const res = await etcd.client().kv.range({
    key: Buffer.from(dir),
    range_end: end,
  });
  return res.kvs.map((kv) => ({
    key: kv.key.toString(),
    value: parse(JSON.parse(kv.value.toString())),
    lease: String(kv.lease),
  }));
}

export function provisionReqs(etcd: HasClient, prefix = "/boi/") {
  return listDir(
    etcd,
    new Keys(prefix).dir("provision-req"),
    (v) => ProvisionRequest.parse(v),
  );
}

export function provisionFailures(etcd: HasClient, prefix = "/boi/") {
  return listDir(
    etcd,
    new Keys(prefix).dir("provision-failures"),
    (v) => ProvisionFailures.parse(v),
  );
}

export async function joinTokenKeys(
  etcd: HasClient,
  prefix = "/boi/",
): Promise<string[]> {
  return await etcd.client().getAll().prefix(
    new Keys(prefix).dir("join-tokens"),
  )
    .keys();
}

/** The `event` log lines of `kind` a node wrote. */
export function events(n: NodeProc, kind: string): LogLine[] {
  return n.logs().filter((l) => l.msg === "event" && l.event === kind);
}
