/**
 * `node drain <node_id> [--force] [--timeout D]` and `node undrain <node_id>`:
 * an operator takes a node out of service without killing its work. The
 * drain request is `/boi/cluster/drain/<node_id>` `{requested_at, by}`; the
 * node stops claiming when it sees it and reports `drain_state` (`draining`,
 * then `drained` once nothing runs) in its caps record.
 */
import { Buffer } from "node:buffer";
import { type Command, Option } from "@commander-js/extra-typings";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import {
  CapsRecord,
  DrainRequest,
  ID_PATTERN,
  NodeRecord,
} from "../node/schema.ts";
import {
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  idArgument,
  type Io,
  parseDurationOption,
  whoAmI,
} from "./context.ts";
import { CliError } from "./errors.ts";
import { formatDuration } from "./format.ts";
import { getRaw } from "./cluster.ts";
import { type Store, type Versioned } from "./store.ts";
import { deleteOp, modIs, putOp, versionIs } from "./txn_ops.ts";

/** How often `node drain` looks at the node's caps record. */
export const DRAIN_POLL_MS = 500;
/** Polls in a row without a registration before the node counts as gone (a re-registration leaves a short gap). */
export const GONE_POLLS = 3;
/** Polls in a row that may fail on an unreachable etcd before `node drain` gives up (exit 3). */
export const MAX_POLL_FAILURES = 3;

/** What one look at the node says. */
export type DrainStep =
  | { kind: "drained" }
  | { kind: "gone" }
  | {
    kind: "wait";
    /** `drain_state` as the node last published it after the request; null before it has. */
    state: string | null;
    busy: number | null;
    pending_flush: number;
  };

/** `pending_flush` from a caps record (0 when the node does not publish it). */
export function pendingFlushOf(caps: CapsRecord | null | undefined): number {
  const v = caps?.dynamic.pending_flush;
  return typeof v === "number" && v > 0 ? v : 0;
}

/**
 * Pure: judges one poll. `since` is the revision of the drain request; a
 * caps record written before it may still say `drained` from an earlier
 * drain, so only later ones count. Without `force`, the node is drained only
 * once its pending flush is empty too: it is then safe to stop.
 */
export function drainStep(
  registered: boolean,
  absentPolls: number,
  caps: Versioned<CapsRecord> | null,
  since: number,
  force: boolean,
): DrainStep {
  if (!registered && absentPolls >= GONE_POLLS) return { kind: "gone" };
  const fresh = caps !== null && caps.mod_revision > since;
  const st = fresh ? caps.value.dynamic.drain_state : undefined;
  const pending = pendingFlushOf(caps?.value);
  if (
    registered && st === "drained" && (force || pending === 0)
  ) return { kind: "drained" };
  return {
    kind: "wait",
    state: typeof st === "string" ? st : null,
    busy: caps?.value.dynamic.workers_busy ?? null,
    pending_flush: pending,
  };
}

function progressLine(nodeId: string, s: DrainStep & { kind: "wait" }) {
  if (s.state === null) return `${nodeId}: waiting for the node to take note`;
  const flush = s.pending_flush > 0
    ? `, ${s.pending_flush} result(s) in its pending flush`
    : "";
  return `${nodeId}: ${s.state}, ${s.busy ?? "?"} task(s) running${flush}`;
}

/** Options of `node drain`. */
export interface DrainOptions extends CommonOptions {
  force?: true;
  timeout?: { ms: number; text: string };
}

/** Runs `node drain`; returns the exit code. */
export async function runDrain(
  io: Io,
  nodeId: string,
  opts: DrainOptions,
  pollMs = DRAIN_POLL_MS,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  const force = opts.force === true;
  const key = ctx.keys.drain(nodeId);
  return await ctx.withStore(async (store) => {
    const node = await store.get(ctx.keys.node(nodeId), NodeRecord);
    if (!node.exists) {
      throw new CliError(
        `node ${nodeId} is not live: nothing is registered at ${
          ctx.keys.node(nodeId)
        }`,
      );
    }
    const caps = await store.get(ctx.keys.caps(nodeId), CapsRecord);
    const pending = pendingFlushOf(caps.item?.value);
    if (pending > 0 && !force) {
      throw new CliError(
        `node ${nodeId} has ${pending} result(s) in its pending flush that etcd has not taken yet: drain it once they are written, or use --force`,
      );
    }
    const request: DrainRequest = { requested_at: io.now(), by: whoAmI(io) };
    const res = await store.txn({
      compare: [versionIs(key, 0)],
      success: [putOp(key, request)],
      failure: [{ request_range: { key: Buffer.from(key) } }],
    });
    const existing = res.responses[0]?.response_range?.kvs?.[0];
    const since = res.succeeded || existing === undefined
      ? Number(res.header.revision)
      : Number(existing.mod_revision);
    if (!ctx.json) {
      ctx.print(
        res.succeeded
          ? `draining ${nodeId}: it claims nothing new; waiting for its running tasks`
          : `${nodeId} is already draining; waiting for its running tasks`,
      );
    }
    const start = io.now();
    const step = await waitDrained(ctx, store, nodeId, since, force, {
      start,
      timeoutMs: opts.timeout?.ms ?? null,
      pollMs,
    });
    if (step.kind === "gone") {
      throw new CliError(
        `node ${nodeId} is gone (its registration vanished) before it drained; the drain request stays: node undrain ${nodeId} clears it`,
      );
    }
    if (step.kind === "wait") {
      throw new CliError(
        `timed out after ${opts.timeout!.text}: ${
          progressLine(nodeId, step)
        }; it stays draining (node undrain ${nodeId} cancels)`,
      );
    }
    const waited = io.now() - start;
    if (ctx.json) {
      ctx.printJson({
        node_id: nodeId,
        drain_state: "drained",
        waited_ms: waited,
      });
    } else {
      ctx.print(`node ${nodeId} drained (after ${formatDuration(waited)})`);
    }
    return EXIT.ok;
  });
}

async function waitDrained(
  ctx: Ctx,
  store: Store,
  nodeId: string,
  since: number,
  force: boolean,
  t: { start: number; timeoutMs: number | null; pollMs: number },
): Promise<DrainStep> {
  let absent = 0;
  let failures = 0;
  let shown = "";
  let last: DrainStep = {
    kind: "wait",
    state: null,
    busy: null,
    pending_flush: 0,
  };
  for (;;) {
    try {
      const node = await store.get(ctx.keys.node(nodeId), NodeRecord);
      const caps = await store.get(ctx.keys.caps(nodeId), CapsRecord);
      failures = 0;
      absent = node.exists ? 0 : absent + 1;
      last = drainStep(node.exists, absent, caps.item, since, force);
      if (last.kind !== "wait") return last;
      const line = progressLine(nodeId, last);
      if (line !== shown && !ctx.json) ctx.print(line);
      shown = line;
    } catch (err) {
      if (!(err instanceof EtcdUnreachableError)) throw err;
      if (++failures >= MAX_POLL_FAILURES) throw err;
    }
    if (t.timeoutMs !== null && ctx.io.now() - t.start >= t.timeoutMs) {
      return last;
    }
    await new Promise((r) => setTimeout(r, t.pollMs));
  }
}

/** Runs `node undrain`: deletes the drain request (compared on its mod revision). */
export async function runUndrain(
  io: Io,
  nodeId: string,
  opts: CommonOptions,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  const key = ctx.keys.drain(nodeId);
  return await ctx.withStore(async (store) => {
    for (let i = 0; i < 5; i++) {
      const kv = await getRaw(store, key);
      if (kv === null) {
        if (ctx.json) ctx.printJson({ node_id: nodeId, was_draining: false });
        else ctx.print(`node ${nodeId} is not draining; nothing changed`);
        return EXIT.ok;
      }
      const res = await store.txn({
        compare: [modIs(key, Number(kv.mod_revision))],
        success: [deleteOp(key)],
      });
      if (!res.succeeded) continue;
      if (ctx.json) ctx.printJson({ node_id: nodeId, was_draining: true });
      else ctx.print(`node ${nodeId} undrained: it claims new tasks again`);
      return EXIT.ok;
    }
    throw new CliError(
      `the drain request at ${key} kept changing; nothing was deleted: try again`,
    );
  });
}

/** Registers `node drain|undrain`. */
export function registerNode(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const node = program.command("node").description(
    "take a node out of service and back",
  );
  {
    const [etcd, prefix, json] = commonOptions();
    node.command("drain")
      .description(
        "stop the node claiming new tasks and wait until its running tasks are done",
      )
      .addArgument(idArgument("<node_id>", "node id", ID_PATTERN))
      .option(
        "--force",
        "drain even though results wait in the node's pending flush",
      )
      .addOption(
        new Option(
          "--timeout <duration>",
          'give up waiting after this long, e.g. "10m" (the node stays draining); default: wait',
        ).argParser((text) => ({ ms: parseDurationOption(text), text })),
      )
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (id, opts) => done(await runDrain(io, id, opts)));
  }
  {
    const [etcd, prefix, json] = commonOptions();
    node.command("undrain")
      .description("let a drained node claim new tasks again")
      .addArgument(idArgument("<node_id>", "node id", ID_PATTERN))
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (id, opts) => done(await runUndrain(io, id, opts)));
  }
}
