/**
 * `cluster init [--secure]` and `cluster admin grant|revoke|list` (SPEC §10–§11):
 * init and grant/revoke are asked of a node (`--node`, default the local one),
 * which holds the CA key and checks it is `cluster_admin` by a direct read;
 * `list` reads the grants and the live caps from etcd.
 */
import type { Command } from "@commander-js/extra-typings";
import { CapsRecord } from "../node/schema.ts";
import { ID_PATTERN } from "../node/schema.ts";
import {
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  idArgument,
  type Io,
} from "./context.ts";
import { nodeAddr, nodeOption } from "./local_node.ts";
import { postNode } from "./node_http.ts";

/** Runs `cluster init`: prints the CA fingerprint (and, with --secure, how to switch etcd over). */
export async function runInit(
  io: Io,
  opts: CommonOptions & { secure?: true; node?: string },
): Promise<number> {
  const ctx = new Ctx(io, opts);
  const doc = await postNode(
    ctx,
    nodeAddr(io, opts.node),
    "/internal/cluster/init",
    {
      secure: opts.secure === true,
    },
  );
  if (ctx.json) {
    ctx.printJson(doc);
    return EXIT.ok;
  }
  ctx.print(String(doc.fingerprint));
  if (doc.secure === true) {
    const env = doc.env as Record<string, string>;
    ctx.warn(
      `cluster CA created on ${doc.node_id}; certificates in ${doc.certs_dir}`,
    );
    ctx.warn("restart etcd with client-certificate auth:");
    ctx.warn(`  etcd ${(doc.etcd_flags as string[]).join(" ")}`);
    ctx.warn("then restart the nodes and run the CLI with:");
    for (const [k, v] of Object.entries(env)) ctx.warn(`  export ${k}=${v}`);
  } else {
    ctx.warn(
      `cluster CA created on ${doc.node_id}; join listener at ${
        doc.join_addr ?? "(not listening)"
      }`,
    );
  }
  return EXIT.ok;
}

/** Runs `cluster admin grant|revoke <node_id>` through an admin node. */
export async function runAdminSet(
  io: Io,
  nodeId: string,
  grant: boolean,
  opts: CommonOptions & { node?: string },
): Promise<number> {
  const ctx = new Ctx(io, opts);
  const doc = await postNode(
    ctx,
    nodeAddr(io, opts.node),
    `/internal/cluster/admins/${nodeId}/${grant ? "grant" : "revoke"}`,
    {},
  );
  if (ctx.json) ctx.printJson(doc);
  else {
    ctx.print(
      `${nodeId}: cluster_admin ${grant ? "granted" : "revoked"}${
        doc.changed ? "" : " already; nothing changed"
      }`,
    );
  }
  return EXIT.ok;
}

/** Runs `cluster admin list`: granted nodes, and whether each is live with the flag in its caps. */
export async function runAdminList(
  io: Io,
  opts: CommonOptions,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  return await ctx.withStore(async (store) => {
    const dir = `${ctx.keys.dir("cluster")}admins/`;
    const { kvs } = await store.rangePrefix(dir);
    const caps = await store.list(ctx.keys.dir("caps"), CapsRecord);
    const live = new Map(
      caps.items.map((
        c,
      ) => [c.key.slice(ctx.keys.dir("caps").length), c.value]),
    );
    const rows = kvs.map((kv) => {
      const id = kv.key.toString().slice(dir.length);
      const c = live.get(id);
      return {
        node_id: id,
        live: c !== undefined,
        caps_say_admin: c?.static.cluster_admin === "true",
      };
    }).sort((a, b) => a.node_id.localeCompare(b.node_id));
    if (ctx.json) ctx.printJson(rows);
    else if (rows.length === 0) {
      ctx.print("no cluster_admin (run cluster init)");
    } else {for (const r of rows) {
        ctx.print(`${r.node_id}\t${r.live ? "live" : "not live"}`);
      }}
    return EXIT.ok;
  });
}

/** Registers `cluster init` and `cluster admin …` under `cluster`. */
export function registerClusterIdentity(
  cluster: Command,
  io: Io,
  done: (code: number) => void,
): void {
  {
    const [etcd, prefix, json] = commonOptions();
    cluster.command("init")
      .description(
        "create the cluster CA on a node and make that node cluster_admin; prints the CA fingerprint",
      )
      .option(
        "--secure",
        "also issue etcd and CLI certificates for client-certificate auth",
      )
      .addOption(nodeOption())
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (opts) => done(await runInit(io, opts)));
  }
  const admin = cluster.command("admin").description("who is cluster_admin");
  for (const grant of [true, false]) {
    const [etcd, prefix, json] = commonOptions();
    admin.command(grant ? "grant" : "revoke")
      .description(
        `${
          grant ? "grant" : "revoke"
        } cluster_admin (asks an admin node, --node)`,
      )
      .addArgument(idArgument("<node_id>", "node id", ID_PATTERN))
      .addOption(nodeOption())
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (id, opts) => done(await runAdminSet(io, id, grant, opts)));
  }
  {
    const [etcd, prefix, json] = commonOptions();
    admin.command("list")
      .description("nodes granted cluster_admin")
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (opts) => done(await runAdminList(io, opts)));
  }
}
