/**
 * `dispatch <spec.yaml> [--wait] [--timeout D]`: validate a spec, write its
 * envelopes and then its spec record (the commit marker), optionally follow
 * the tasks until they are all terminal.
 */
import { securedFetch } from "./node_http.ts";
import { Buffer } from "node:buffer";
import { type Command, Option } from "@commander-js/extra-typings";
import type { IRequestOp, ITxnResponse } from "etcd3";
import type { Keys } from "../node/keys.ts";
import { EtcdUnreachableError } from "../node/etcd_errors.ts";
import { type Envelope, TERMINAL_STATES } from "../node/schema.ts";
import {
  MAX_SPEC_BYTES,
  MAX_STORED_BYTES,
  type ParsedSpec,
  parseSpec,
  SpecError,
} from "../node/spec.ts";
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
import {
  changeLine,
  countStates,
  formatDuration,
  nodeOf,
  summarizeCounts,
  table,
} from "./format.ts";
import {
  deleteOp,
  EtcdNotReachedError,
  modIs,
  neverSent,
  putOp,
  putRawOp,
  type Store,
  versionIs,
} from "./store.ts";
import { EnvelopeFeed } from "./watch.ts";
import { nodeAddr, nodeOption, reportDispatchRejected } from "./local_node.ts";
import { localAdminSecret } from "./admin_secret.ts";
import { takeEarlyProbe } from "./early_probe.ts";

/** etcd's limit on operations per transaction (compares and puts each). */
export const MAX_TXN_OPS = 128;
/** Budget per transaction, well under etcd's default 1.5 MiB request limit. */
export const MAX_TXN_BYTES = 1_000_000;
const SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
/** Collisions of random spec ids are retried with a fresh suffix this often. */
const SUFFIX_TRIES = 3;

/** 6 chars of [a-z2-7]; 256 is a multiple of 32, so `byte & 31` is unbiased. */
export function randomSuffix(
  bytes: Uint8Array = crypto.getRandomValues(new Uint8Array(6)),
): string {
  return [...bytes.subarray(0, 6)].map((b) => SUFFIX_ALPHABET[b & 31]).join(
    "",
  );
}

/** One key/value to create. */
export interface Put {
  key: string;
  value: string;
}

/** The puts of one transaction; the last chunk also carries the spec record. */
export interface Chunk {
  puts: Put[];
  withSpec: boolean;
}

/**
 * Splits the writes of a dispatch into transactions of at most 128 ops and
 * `maxBytes`, the spec record in the last one; throws if a record cannot fit
 * or the whole dispatch would store more than `maxStored` bytes.
 */
export function planChunks(
  keys: Keys,
  parsed: ParsedSpec,
  maxBytes = MAX_TXN_BYTES,
  maxStored = MAX_STORED_BYTES,
): Chunk[] {
  const specKey = keys.spec(parsed.spec_id);
  const specBytes = 2 * specKey.length + byteLength(
    JSON.stringify(parsed.record),
  );
  if (specBytes > maxBytes) {
    throw new CliError(
      `spec ${parsed.spec_id} is too large to store: its record is ${specBytes} bytes, at most ${maxBytes}`,
    );
  }
  const chunks: Chunk[] = [];
  let cur: Put[] = [];
  // Every transaction also compares the spec key: count it once.
  let bytes = specKey.length;
  let stored = byteLength(specKey) + specBytes - 2 * specKey.length;
  for (const e of parsed.envelopes) {
    const put = { key: keys.task(e.task_id), value: JSON.stringify(e) };
    const size = 2 * byteLength(put.key) + byteLength(put.value);
    stored += size - byteLength(put.key);
    if (stored > maxStored) {
      throw new CliError(
        `spec ${parsed.spec_id} would store more than ${maxStored} bytes in etcd (${parsed.envelopes.length} tasks, ${
          Math.round(size / 1024)
        } KiB each): make the spec-level requires smaller or split the spec`,
      );
    }
    if (size + specKey.length > maxBytes) {
      throw new CliError(
        `task ${e.task_id} is too large to store: ${size} bytes, at most ${maxBytes}`,
      );
    }
    if (cur.length === MAX_TXN_OPS - 1 || bytes + size > maxBytes) {
      chunks.push({ puts: cur, withSpec: false });
      cur = [];
      bytes = specKey.length;
    }
    cur.push(put);
    bytes += size;
  }
  if (bytes + specBytes - specKey.length > maxBytes) {
    chunks.push({ puts: cur, withSpec: false });
    cur = [];
  }
  chunks.push({ puts: cur, withSpec: true });
  return chunks;
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Reads at most MAX_SPEC_BYTES + 1 bytes (pipes and devices included) as UTF-8. */
export async function readSpecFile(path: string): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    throw new CliError(`${path}: cannot read: ${osReason(err)}`);
  }
  const buf = new Uint8Array(MAX_SPEC_BYTES + 1);
  let n = 0;
  try {
    while (n < buf.length) {
      const got = await file.read(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
  } catch (err) {
    throw new CliError(`${path}: cannot read: ${osReason(err)}`);
  } finally {
    file.close();
  }
  if (n > MAX_SPEC_BYTES) {
    throw new CliError(
      `${path}: is too large: more than ${MAX_SPEC_BYTES} bytes`,
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(
      buf.subarray(0, n),
    );
  } catch {
    throw new CliError(`${path}: cannot read: not UTF-8 text`);
  }
}

function osReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // "No such file or directory (os error 2): open '/x'" -> keep the cause.
  return msg.split("\n")[0].replace(/: \w+ '.*'$/, "");
}

/** Writes a parsed spec; `ok: false` on an id collision (then nothing is left written). */
export async function writeSpec(
  store: Store,
  keys: Keys,
  parsed: ParsedSpec,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const chunks = planChunks(keys, parsed);
  const specKey = keys.spec(parsed.spec_id);
  const written: { keys: string[]; revision: number }[] = [];
  for (const chunk of chunks) {
    const success: IRequestOp[] = chunk.puts.map((p) =>
      putRawOp(p.key, p.value)
    );
    if (chunk.withSpec) success.push(putOp(specKey, parsed.record));
    let res: ITxnResponse;
    try {
      res = await store.txn({
        compare: [
          versionIs(specKey, 0),
          ...chunk.puts.map((p) => versionIs(p.key, 0)),
        ],
        success,
        failure: [{ request_range: { key: Buffer.from(specKey) } }],
      });
    } catch (err) {
      return await afterFailure(store, parsed, written, chunk, err);
    }
    if (!res.succeeded) {
      await rollback(store, written);
      const specThere = res.responses[0]?.response_range?.kvs?.length > 0;
      return {
        ok: false,
        reason: specThere
          ? `spec ${parsed.spec_id} already exists`
          : `spec ${parsed.spec_id} already exists: tasks of an unfinished dispatch (with no spec record) hold its task ids`,
      };
    }
    written.push({
      keys: chunk.puts.map((p) => p.key),
      revision: Number(res.header.revision),
    });
  }
  return { ok: true };
}

/**
 * A transaction failed. If etcd said no (not an outage), undo the chunks
 * written so far. If etcd is unreachable, undoing would fail too: say what
 * may be left (tasks without a spec record, which nodes ignore) and give up.
 */
async function afterFailure(
  store: Store,
  parsed: ParsedSpec,
  written: { keys: string[]; revision: number }[],
  chunk: Chunk,
  err: unknown,
): Promise<never> {
  if (!(err instanceof EtcdUnreachableError)) {
    if (!(await rollback(store, written))) {
      store.warn(
        `warning: dispatch of ${parsed.spec_id} failed; tasks already written could not be removed (they have no spec record, so nodes ignore them)`,
      );
    }
    throw err;
  }
  if (chunk.withSpec && !neverSent(err)) {
    store.warn(
      `warning: spec ${parsed.spec_id} may or may not be committed: check with "status ${parsed.spec_id}"`,
    );
  } else if (written.length > 0 || !neverSent(err)) {
    store.warn(
      `warning: dispatch of ${parsed.spec_id} did not finish; tasks already written have no spec record, so nodes ignore them`,
    );
  }
  throw err;
}

/** Deletes chunks written so far, each guarded by its mod revision. */
async function rollback(
  store: Store,
  written: { keys: string[]; revision: number }[],
): Promise<boolean> {
  let ok = true;
  for (const w of written) {
    try {
      const res = await store.txn({
        compare: w.keys.map((k) => modIs(k, w.revision)),
        success: w.keys.map((k) => deleteOp(k)),
      });
      if (!res.succeeded) ok = false;
    } catch {
      ok = false;
    }
  }
  return ok;
}

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
  planChunks(ctx.keys, parsed); // size errors before touching etcd
  // With `id:` the spec id is fixed: a collision cannot be retried away.
  const explicitId = !parsed.spec_id.endsWith(`-${suffix}`);

  const node = nodeAddr(io, opts.node);
  let committed = false;
  try {
    return await ctx.withStore(async (store) => {
      await probeEtcd(ctx, store); // an unreachable etcd fails here, before any write
      for (let tries = 1;; tries++) {
        const res = await writeSpec(store, ctx.keys, parsed);
        if (res.ok) break;
        if (explicitId || tries >= SUFFIX_TRIES) {
          throw new CliError(res.reason);
        }
        parsed = parse();
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

/** Follows the spec's tasks until all are terminal (or gone, or the timeout). */
export async function waitForSpec(
  ctx: Ctx,
  store: Store,
  parsed: ParsedSpec,
  timeoutMs: number | null,
  timeoutText = timeoutMs === null ? "" : formatDuration(timeoutMs),
): Promise<number> {
  const start = ctx.io.now();
  const ids = parsed.record.task_ids;
  const wanted = new Set(ids);
  const latest = new Map<string, Envelope>(
    parsed.envelopes.map((e) => [e.task_id, e]),
  );
  const gone = new Set<string>();
  const live = ctx.io.isTty && !ctx.json;
  const shown = new Map<string, string>(
    parsed.envelopes.map((e) => [e.task_id, progressKey(e)]),
  );
  let drawn = 0;

  const redraw = () => {
    const lines = progressLines(
      parsed.spec_id,
      ids.map((id) => latest.get(id)!),
      gone,
      ctx.io.now() - start,
    );
    // Cut lines to the terminal width so each takes one row to redraw.
    const width = ctx.io.columns();
    const fit = (l: string) =>
      width > 1 && l.length >= width ? `${l.slice(0, width - 2)}…` : l;
    const up = drawn > 0 ? `\x1b[${drawn}F\x1b[J` : "";
    ctx.io.out(up + lines.map((l) => `${fit(l)}\n`).join(""));
    drawn = lines.length;
  };

  const feed = new EnvelopeFeed(
    store,
    `${ctx.keys.dir("dispatch-queue")}${parsed.spec_id}.`,
    (taskId, item) => {
      if (item === null) {
        gone.add(taskId);
        if (!ctx.json && !live) ctx.print(`${taskId} deleted`);
        return;
      }
      gone.delete(taskId);
      latest.set(taskId, item.value);
      const key = progressKey(item.value);
      if (shown.get(taskId) !== key) {
        shown.set(taskId, key);
        if (!ctx.json && !live) ctx.print(changeLine(item.value));
      }
    },
    (taskId) => wanted.has(taskId),
  );

  const finished = () =>
    ids.every((id) =>
      gone.has(id) || TERMINAL_STATES.has(latest.get(id)!.state)
    );
  try {
    await feed.start();
    if (live) redraw();
    while (!finished()) {
      const left = timeoutMs === null
        ? Infinity
        : start + timeoutMs - ctx.io.now();
      if (left <= 0) {
        if (live) redraw();
        const waiting = ids.filter((id) =>
          !gone.has(id) && !TERMINAL_STATES.has(latest.get(id)!.state)
        );
        if (ctx.json) {
          ctx.printJson({
            spec_id: parsed.spec_id,
            task_ids: ids,
            tasks: ids.map((id) => latest.get(id)!),
          });
        }
        throw new CliError(
          `timed out after ${timeoutText} waiting for: ${waiting.join(", ")}`,
        );
      }
      await feed.changed(Math.min(left, live ? 1000 : 60_000));
      if (live) redraw();
    }
  } finally {
    feed.close();
  }

  const tasks = ids.map((id) => latest.get(id)!);
  const allDone = ids.every((id) =>
    !gone.has(id) && latest.get(id)!.state === "DONE"
  );
  if (ctx.json) {
    ctx.printJson({ spec_id: parsed.spec_id, task_ids: ids, tasks });
  } else {
    for (
      const line of summaryLines(
        parsed.spec_id,
        tasks,
        gone,
        ctx.io.now() - start,
      )
    ) {
      ctx.print(line);
    }
  }
  return allDone ? EXIT.ok : EXIT.failed;
}

/** What makes a task's progress line change. */
function progressKey(e: Envelope): string {
  return `${e.state}|${nodeOf(e) ?? ""}|${e.attempts}|${e.cancel_requested}`;
}

/** Rows of tasks shown in the live table before it switches to a summary. */
const MAX_LIVE_ROWS = 20;

/** The live progress block of `dispatch --wait` on a terminal. */
export function progressLines(
  specId: string,
  tasks: Envelope[],
  gone: ReadonlySet<string>,
  elapsedMs: number,
): string[] {
  const counts = countStates(tasks.filter((t) => !gone.has(t.task_id)));
  const head = `${specId}  ${summarizeCounts(counts)}${
    gone.size > 0 ? `, ${gone.size} deleted` : ""
  }  ${formatDuration(elapsedMs)}`;
  let rows = tasks;
  let more = 0;
  if (tasks.length > MAX_LIVE_ROWS) {
    rows = tasks.filter((t) =>
      t.state === "CLAIMED" || t.state === "RUNNING" || t.state === "FAILED"
    ).slice(0, MAX_LIVE_ROWS);
    more = tasks.length - rows.length;
  }
  const lines = [
    head,
    ...table(
      ["  TASK", "STATE", "NODE", "ATTEMPT", "EXIT"],
      rows.map((t) => [
        `  ${t.task_id.slice(specId.length + 1)}`,
        gone.has(t.task_id) ? "deleted" : t.state,
        nodeOf(t) ?? "-",
        `${t.attempts}/${t.max_attempts}`,
        t.exit_code === null ? "-" : String(t.exit_code),
      ]),
    ),
  ];
  if (more > 0) lines.push(`  … ${more} more`);
  return lines;
}

/** The closing lines of `dispatch --wait`. */
export function summaryLines(
  specId: string,
  tasks: Envelope[],
  gone: ReadonlySet<string>,
  elapsedMs: number,
): string[] {
  const present = tasks.filter((t) => !gone.has(t.task_id));
  const lines = [
    `${specId}: ${summarizeCounts(countStates(present))}${
      gone.size > 0 ? `, ${gone.size} deleted` : ""
    } in ${formatDuration(elapsedMs)}`,
  ];
  for (const t of tasks) {
    if (gone.has(t.task_id)) lines.push(`  ${t.task_id} deleted`);
    else if (t.state !== "DONE") lines.push(`  ${changeLine(t)}`);
  }
  return lines;
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
