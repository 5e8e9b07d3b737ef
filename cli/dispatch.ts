/**
 * `dispatch <spec.yaml> [--wait] [--timeout D]`: validate a spec, write its
 * envelopes and then its spec record (the commit marker), optionally follow
 * the tasks until they are all terminal.
 */
import { securedFetch } from "./node_http.ts";
import { Buffer } from "node:buffer";
import { type Command, Option } from "@commander-js/extra-typings";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import { type ParsedSpec, parseSpec, SpecError } from "../node/spec.ts";
import {
  CliError,
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  type Io,
  parseDurationOption,
  whoAmI,
} from "./context.ts";
import { EtcdNotReachedError, type Store } from "./store.ts";
import { nodeAddr, nodeOption, reportDispatchRejected } from "./local_node.ts";
import { localAdminSecret } from "./admin_secret.ts";
import { takeEarlyProbe } from "./early_probe.ts";
import { planChunks, randomSuffix, writeSpec } from "./dispatch_write.ts";
import { readSpecFile } from "./spec_file.ts";
import { waitForSpec } from "./dispatch_wait.ts";

/** Collisions of random spec ids are retried with a fresh suffix this often. */
const SUFFIX_TRIES = 3;

/** Options of `dispatch`. */
export interface DispatchOptions extends CommonOptions {
  wait?: true;
  /** `--node`: the local node told about a dispatch refused for an unreachable etcd. */
  node?: string;
  /** `--timeout`: the duration and the text the user typed, for messages. */
  timeout?: { ms: number; text: string };
}

/** Runs `dispatch`; returns the exit code. */
export async function runDispatch(
  io: Io,
  file: string,
  opts: DispatchOptions,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  const timeoutMs = opts.timeout?.ms ?? null;
  if (opts.timeout !== undefined && opts.wait !== true) {
    throw new CliError("--timeout needs --wait", EXIT.usage);
  }
  const text = await readSpecFile(file);
  let suffix = "";
  const parse = () => {
    suffix = randomSuffix();
    try {
      return parseSpec(file, text, {
        now: io.now(),
        suffix,
        dispatchedBy: whoAmI(io),
      });
    } catch (err) {
      if (err instanceof SpecError) throw new CliError(err.message);
      throw err;
    }
  };
  let parsed = parse();
  let chunks = planChunks(ctx.keys, parsed); // size errors before touching etcd
  // With `id:` the spec id is fixed: a collision cannot be retried away.
  const explicitId = !parsed.spec_id.endsWith(`-${suffix}`);

  const node = nodeAddr(io, opts.node);
  let committed = false;
  try {
    return await ctx.withStore(async (store) => {
      await probeEtcd(ctx, store); // an unreachable etcd fails here, before any write
      for (let tries = 1;; tries++) {
        const res = await writeSpec(store, ctx.keys, parsed, { chunks });
        if (res.ok) break;
        if (explicitId || tries >= SUFFIX_TRIES) {
          throw new CliError(res.reason);
        }
        parsed = parse();
        chunks = planChunks(ctx.keys, parsed);
      }
      committed = true;
      return await afterCommit(ctx, store, parsed, opts, timeoutMs);
    });
  } catch (err) {
    // SPEC §6: a dispatch refused for an unreachable etcd is counted by the
    // local node (boi_dispatch_rejected_etcd_unreachable_total).
    if (!committed && err instanceof EtcdUnreachableError) {
      await reportDispatchRejected(
        node,
        await localAdminSecret(io),
        undefined,
        await securedFetch(ctx), // https with the CLI certificate in a secure cluster
      );
    }
    throw err;
  }
}

/**
 * Refuses early when etcd is unreachable: the probe `cli.ts` started before
 * the CLI loaded, or (no such probe, or no HTTP gateway) a short gRPC read.
 */
async function probeEtcd(ctx: Ctx, store: Store): Promise<void> {
  const early = await takeEarlyProbe(ctx.endpoints);
  if (early?.kind === "ok") return;
  if (early?.kind === "unreachable") {
    throw new EtcdNotReachedError(ctx.endpoints, early.reason);
  }
  await store.probe();
}

/** Prints the ids, notes a pause, and follows the tasks with `--wait`. */
async function afterCommit(
  ctx: Ctx,
  store: Store,
  parsed: ParsedSpec,
  opts: DispatchOptions,
  timeoutMs: number | null,
): Promise<number> {
  if (!ctx.json) {
    ctx.print(parsed.spec_id);
    for (const id of parsed.record.task_ids) ctx.print(id);
  }
  await notePaused(ctx, store);
  if (opts.wait !== true) {
    if (ctx.json) {
      ctx.printJson({
        spec_id: parsed.spec_id,
        task_ids: parsed.record.task_ids,
      });
    }
    return EXIT.ok;
  }
  return await waitForSpec(
    ctx,
    store,
    parsed,
    timeoutMs,
    opts.timeout?.text,
  );
}

/** Best effort: the dispatch is done, so a failed look-up must not fail it. */
async function notePaused(ctx: Ctx, store: Store): Promise<void> {
  try {
    const res = await store.call((o) =>
      store.client.kv.range({
        key: Buffer.from(ctx.keys.dispatchPaused()),
        count_only: true,
      }, o)
    );
    if (Number(res.count) > 0) {
      ctx.warn(
        "note: dispatch is paused cluster-wide (cluster resume-dispatch); the tasks wait until it is resumed",
      );
    }
  } catch {
    // etcd went away right after the commit: the --wait loop will say so.
  }
}

/** Registers `dispatch` on the program. */
export function registerDispatch(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const [etcd, prefix, json] = commonOptions();
  program
    .command("dispatch")
    .description("validate a spec file, store its tasks, print the spec id")
    .argument("<spec.yaml>", "spec file (YAML)")
    .option(
      "--wait",
      "follow the tasks until all are terminal; exit 0 only if all are DONE",
    )
    .addOption(
      new Option(
        "--timeout <duration>",
        'give up waiting after this long, e.g. "90s" (needs --wait)',
      ).argParser((text) => ({ ms: parseDurationOption(text), text })),
    )
    .addOption(nodeOption())
    .addOption(etcd).addOption(prefix).addOption(json)
    .action(async (file, opts) => done(await runDispatch(io, file, opts)));
}
