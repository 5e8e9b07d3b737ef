/**
 * `cluster pause-dispatch | resume-dispatch | status`: the cluster-wide
 * dispatch switch (`/boi/cluster/dispatch_paused`, SPEC §5.8) and a summary
 * of the cluster's state.
 */
import { Buffer } from "node:buffer";
import type { Command } from "@commander-js/extra-typings";
import type { IKeyValue } from "etcd3";
import {
  CapsRecord,
  DispatchPaused,
  DrainRequest,
  NodeRecord,
} from "../node/schema.ts";
import {
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  type Io,
  whoAmI,
} from "./context.ts";
import { CliError } from "./errors.ts";
import { formatDuration } from "./format.ts";
import { registerClusterIdentity } from "./cluster_identity.ts";
import {
  provisionLines,
  type ProvisionStatus,
  readProvisionStatus,
} from "./cluster_provision.ts";
import { CaRecord, ClusterVersion } from "../node/identity/records.ts";
import { decodeKv, type Store } from "./store.ts";
import { deleteOp, modIs, putOp, versionIs } from "./txn_ops.ts";

/** Compare-and-delete retries of `resume-dispatch` when the record keeps changing. */
const RESUME_TRIES = 5;

/** One key as stored, or null when absent. */
export async function getRaw(
  store: Store,
  key: string,
): Promise<IKeyValue | null> {
  const res = await store.call((o) =>
    store.client.kv.range({ key: Buffer.from(key) }, o)
  );
  return res.kvs[0] ?? null;
}

function pausedLine(p: DispatchPaused | null, now: number): string {
  return p === null
    ? "paused (the record is unreadable)"
    : `paused ${formatDuration(now - p.paused_at)} ago by ${p.by}`;
}

/** Runs `cluster pause-dispatch`: sets the switch once; already paused is fine. */
export async function runPause(io: Io, opts: CommonOptions): Promise<number> {
  const ctx = new Ctx(io, opts);
  const key = ctx.keys.dispatchPaused();
  const record: DispatchPaused = { paused_at: io.now(), by: whoAmI(io) };
  return await ctx.withStore(async (store) => {
    const res = await store.txn({
      compare: [versionIs(key, 0)],
      success: [putOp(key, record)],
      failure: [{ request_range: { key: Buffer.from(key) } }],
    });
    if (res.succeeded) {
      if (ctx.json) {
        ctx.printJson({ paused: true, already_paused: false, ...record });
      } else {
        ctx.print(
          "dispatch paused: no node claims new tasks; running tasks go on (cluster resume-dispatch to resume)",
        );
      }
      return EXIT.ok;
    }
    const kv = res.responses[0]?.response_range?.kvs?.[0];
    const current = kv
      ? decodeKv(kv, DispatchPaused, ctx.warn.bind(ctx))
      : null;
    if (ctx.json) {
      ctx.printJson({
        paused: true,
        already_paused: true,
        paused_at: current?.value.paused_at ?? null,
        by: current?.value.by ?? null,
      });
    } else {
      ctx.print(
        `dispatch already ${
          pausedLine(current?.value ?? null, io.now())
        }; nothing changed`,
      );
    }
    return EXIT.ok;
  });
}

/** Runs `cluster resume-dispatch`: deletes the switch, compared on its mod revision. */
export async function runResume(io: Io, opts: CommonOptions): Promise<number> {
  const ctx = new Ctx(io, opts);
  const key = ctx.keys.dispatchPaused();
  return await ctx.withStore(async (store) => {
    for (let i = 0; i < RESUME_TRIES; i++) {
      const kv = await getRaw(store, key);
      if (kv === null) {
        if (ctx.json) ctx.printJson({ paused: false, was_paused: false });
        else ctx.print("dispatch is not paused; nothing changed");
        return EXIT.ok;
      }
      const rec = decodeKv(kv, DispatchPaused, ctx.warn.bind(ctx));
      const res = await store.txn({
        compare: [modIs(key, Number(kv.mod_revision))],
        success: [deleteOp(key)],
      });
      if (!res.succeeded) continue; // paused again meanwhile: look again
      if (ctx.json) {
        ctx.printJson({
          paused: false,
          was_paused: true,
          paused_at: rec?.value.paused_at ?? null,
          by: rec?.value.by ?? null,
        });
      } else {
        ctx.print(
          `dispatch resumed${
            rec === null
              ? ""
              : ` (was paused for ${
                formatDuration(io.now() - rec.value.paused_at)
              } by ${rec.value.by})`
          }: nodes claim pending tasks again`,
        );
      }
      return EXIT.ok;
    }
    throw new CliError(
      `the record at ${key} kept changing; nothing was deleted: try again`,
    );
  });
}

/** One node being drained, as `cluster status` shows it. */
export interface DrainRow {
  node_id: string;
  requested_at: number | null;
  by: string | null;
  /** The node's own account: draining, drained, or null when not live or not yet seen. */
  drain_state: string | null;
  live: boolean;
  workers_busy: number | null;
}

/** The `cluster status --json` document. */
export interface ClusterStatus {
  dispatch_paused: DispatchPaused | null;
  /** True also when the record is present but unreadable (nodes treat it as paused). */
  paused: boolean;
  nodes: number;
  degraded: string[];
  draining: DrainRow[];
  /** Nodes with results waiting in their pending flush. */
  pending_flush: { node_id: string; entries: number }[];
  /** Present while there are provisioning requests or cooldowns (cluster_provision.ts). */
  provisioning?: ProvisionStatus;
  /** `/boi/cluster/version` once `cluster init` wrote it (null: unreadable). */
  version?: ClusterVersion | null;
  /** Present once `cluster init` ran: the CA and who is cluster_admin. */
  identity?: {
    ca_fingerprint: string | null;
    secure: boolean;
    admins: string[];
  };
}

/** Pure: builds the status from what was read. */
export function clusterStatus(
  pausedKv: { value: DispatchPaused | null } | null,
  nodes: NodeRecord[],
  caps: Map<string, CapsRecord>,
  drains: Map<string, DrainRequest | null>,
): ClusterStatus {
  const live = new Set(nodes.map((n) => n.node_id));
  const degraded = nodes.filter((n) =>
    caps.get(n.node_id)?.dynamic.health === "degraded"
  ).map((n) => n.node_id).sort();
  const draining = [...drains].map(([id, req]): DrainRow => {
    const c = caps.get(id);
    const st = c?.dynamic.drain_state;
    return {
      node_id: id,
      requested_at: req?.requested_at ?? null,
      by: req?.by ?? null,
      drain_state: live.has(id) && typeof st === "string" ? st : null,
      live: live.has(id),
      workers_busy: live.has(id) ? c?.dynamic.workers_busy ?? null : null,
    };
  }).sort((a, b) => a.node_id.localeCompare(b.node_id));
  const pending_flush = nodes.flatMap((n) => {
    const v = caps.get(n.node_id)?.dynamic.pending_flush;
    return typeof v === "number" && v > 0
      ? [{ node_id: n.node_id, entries: v }]
      : [];
  }).sort((a, b) => a.node_id.localeCompare(b.node_id));
  return {
    dispatch_paused: pausedKv?.value ?? null,
    paused: pausedKv !== null,
    nodes: nodes.length,
    degraded,
    draining,
    pending_flush,
  };
}

/** The human lines of `cluster status`. */
export function clusterStatusLines(s: ClusterStatus, now: number): string[] {
  const lines = [
    `dispatch: ${
      s.paused
        ? `${
          pausedLine(s.dispatch_paused, now)
        } (cluster resume-dispatch to resume)`
        : "running"
    }`,
    `nodes: ${s.nodes} live${
      s.degraded.length > 0
        ? `, ${s.degraded.length} degraded (${s.degraded.join(", ")})`
        : ""
    }`,
  ];
  if (s.draining.length === 0) lines.push("draining: none");
  else {
    lines.push(
      `draining: ${
        s.draining.map((d) => {
          const what = !d.live
            ? "not live"
            : d.drain_state === null
            ? "requested"
            : d.drain_state === "draining"
            ? `draining, ${d.workers_busy ?? "?"} running`
            : d.drain_state;
          return `${d.node_id} (${what})`;
        }).join(", ")
      }`,
    );
  }
  if (s.pending_flush.length > 0) {
    lines.push(
      `pending flush: ${
        s.pending_flush.map((p) => `${p.node_id} ${p.entries}`).join(", ")
      }`,
    );
  }
  if (s.provisioning) lines.push(...provisionLines(s.provisioning, now));
  if (s.version !== undefined) {
    lines.push(
      s.version === null
        ? "data format: (unreadable record)"
        : `data format: ${s.version.format} (written by boi ${s.version.boi} on ${s.version.written_by})`,
    );
  }
  if (s.identity) {
    lines.push(
      `identity: CA ${s.identity.ca_fingerprint ?? "(unreadable record)"} (${
        s.identity.secure ? "init --secure" : "init"
      }), admins: ${s.identity.admins.join(", ") || "none"}`,
    );
  }
  return lines;
}

/** Runs `cluster status`. */
export async function runClusterStatus(
  io: Io,
  opts: CommonOptions,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  return await ctx.withStore(async (store) => {
    const warn = ctx.warn.bind(ctx);
    const pausedRaw = await getRaw(store, ctx.keys.dispatchPaused());
    const nodes = await store.list(ctx.keys.dir("nodes"), NodeRecord);
    const caps = await store.list(ctx.keys.dir("caps"), CapsRecord);
    const drainDir = `${ctx.keys.dir("cluster")}drain/`;
    const { kvs } = await store.rangePrefix(drainDir);
    const drains = new Map<string, DrainRequest | null>();
    for (const kv of kvs) {
      const id = kv.key.toString().slice(drainDir.length);
      drains.set(id, decodeKv(kv, DrainRequest, warn)?.value ?? null);
    }
    const capsById = new Map(
      caps.items.map((
        c,
      ) => [c.key.slice(ctx.keys.dir("caps").length), c.value]),
    );
    const status = clusterStatus(
      pausedRaw === null
        ? null
        : { value: decodeKv(pausedRaw, DispatchPaused, warn)?.value ?? null },
      nodes.items.map((n) => n.value),
      capsById,
      drains,
    );
    const provisioning = await readProvisionStatus(store, ctx.keys, io.now());
    if (provisioning.requests.length + provisioning.cooldowns.length > 0) {
      status.provisioning = provisioning;
    }
    const version = await getRaw(store, ctx.keys.clusterVersion());
    if (version !== null) {
      status.version = decodeKv(version, ClusterVersion, warn)?.value ?? null;
    }
    const ca = await getRaw(store, ctx.keys.ca());
    if (ca !== null) {
      const rec = decodeKv(ca, CaRecord, warn)?.value ?? null;
      const adminDir = `${ctx.keys.dir("cluster")}admins/`;
      const admins = (await store.rangePrefix(adminDir)).kvs
        .map((kv) => kv.key.toString().slice(adminDir.length)).sort();
      status.identity = {
        ca_fingerprint: rec?.fingerprint ?? null,
        secure: rec?.secure === true,
        admins,
      };
    }
    if (ctx.json) ctx.printJson(status);
    else for (const l of clusterStatusLines(status, io.now())) ctx.print(l);
    return EXIT.ok;
  });
}

/** Registers `cluster pause-dispatch|resume-dispatch|status`. */
export function registerCluster(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const cluster = program
    .command("cluster")
    .description("cluster-wide switches and state");
  {
    const [etcd, prefix, json] = commonOptions();
    cluster
      .command("pause-dispatch")
      .description(
        "stop every node from claiming new tasks; running tasks go on",
      )
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (opts) => done(await runPause(io, opts)));
  }
  {
    const [etcd, prefix, json] = commonOptions();
    cluster
      .command("resume-dispatch")
      .description("let nodes claim pending tasks again")
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (opts) => done(await runResume(io, opts)));
  }
  {
    const [etcd, prefix, json] = commonOptions();
    cluster
      .command("status")
      .description(
        "dispatch paused or running, live and degraded nodes, drains, pending flushes, provisioning",
      )
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (opts) => done(await runClusterStatus(io, opts)));
  }
  registerClusterIdentity(cluster, io, done);
}
