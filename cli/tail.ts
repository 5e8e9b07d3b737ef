/**
 * `tail <task_id> [--follow] [--since-bytes N] [--max-bytes N]` (SPEC §9):
 * finds the node that has the task's log through the envelope
 * (`claimant_node_id`, or `ran_on` once finished), reads its `addr` from
 * `/boi/nodes/`, and copies `GET /internal/tail/...` to stdout as raw bytes.
 *
 * Offsets are byte offsets into that node's log file. The command counts
 * what it wrote, and every reconnect asks for `since_bytes = offset`, so a
 * dropped connection leaves no gap and no duplicate. At the end it prints
 * `tail: offset N (node X)` on stderr, so a caller can resume with
 * `--since-bytes N`.
 */
import { securedFetch } from "./node_http.ts";
import { InvalidArgumentError, Option } from "@commander-js/extra-typings";
import type { Command } from "@commander-js/extra-typings";
import {
  Envelope,
  NodeRecord,
  TASK_ID_PATTERN,
  TERMINAL_STATES,
} from "../node/schema.ts";
import {
  CliError,
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  idArgument,
  type Io,
} from "./context.ts";
import {
  newResult,
  tailLoop,
  type TailOptions,
  type TailTarget,
} from "./tail_loop.ts";

/** Options of the `tail` command as commander parses them. */
export interface TailCommandOptions extends CommonOptions {
  follow?: true;
  sinceBytes?: number;
  maxBytes?: number;
}

async function writeAll(bytes: Uint8Array): Promise<void> {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(await Deno.stdout.write(rest));
}

/** Runs `tail`; returns the exit code. */
export async function runTail(
  io: Io,
  taskId: string,
  opts: TailCommandOptions,
  write: (bytes: Uint8Array) => Promise<void> = writeAll,
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  if (ctx.json && opts.follow) {
    throw new CliError("--json cannot be used with --follow", EXIT.usage);
  }
  return await ctx.withStore(async (store) => {
    const resolve = async (): Promise<TailTarget> => {
      const { item, exists } = await store.get(ctx.keys.task(taskId), Envelope);
      if (!exists) throw new CliError(`task ${taskId} not found`);
      if (item === null) {
        throw new CliError(`task ${taskId} has an invalid record`);
      }
      const e = item.value;
      const terminal = TERMINAL_STATES.has(e.state);
      const node_id = terminal
        ? e.ran_on ?? e.claimant_node_id
        : e.claimant_node_id ?? e.ran_on;
      let addr: string | null = null;
      if (node_id !== null) {
        addr = (await store.get(ctx.keys.node(node_id), NodeRecord)).item
          ?.value.addr ?? null;
      }
      return { state: e.state, terminal, node_id, addr };
    };
    const chunks: Uint8Array[] = [];
    const topts: TailOptions = {
      follow: opts.follow === true,
      since_bytes: opts.sinceBytes ?? 0,
      max_bytes: opts.maxBytes ?? null,
    };
    const result = newResult(topts);
    const offsetLine = () =>
      `tail: offset ${result.offset}${
        result.node_id ? ` (node ${result.node_id})` : ""
      }`;
    try {
      await tailLoop(taskId, topts, {
        resolve,
        fetch: await securedFetch(ctx), // https with the CLI certificate in a secure cluster
        write: async (b) => {
          if (ctx.json) chunks.push(b);
          else await write(b);
        },
        warn: (l) => ctx.warn(l),
        signal,
      }, result);
    } catch (e) {
      // What was printed stays printed: say where to resume.
      if (result.written > 0 && !ctx.json) ctx.warn(offsetLine());
      throw e;
    }
    if (ctx.json) {
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      ctx.printJson({
        task_id: taskId,
        node_id: result.node_id,
        state: result.state,
        since_bytes: opts.sinceBytes ?? 0,
        offset: result.offset,
        bytes: result.written,
        log: new TextDecoder().decode(all),
      });
    }
    ctx.warn(offsetLine());
    return result.interrupted ? 130 : EXIT.ok;
  });
}

function byteCount(value: string): number {
  if (!/^\d{1,15}$/.test(value)) {
    throw new InvalidArgumentError(
      `must be a byte count (0 or more): got ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

/** Registers `tail` on the program. */
export function registerTail(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const [etcd, prefix, json] = commonOptions();
  program
    .command("tail")
    .description(
      "print a task's log (stdout and stderr, raw bytes) from the node that has it",
    )
    .addArgument(idArgument("<task_id>", "task id", TASK_ID_PATTERN))
    .option("-f, --follow", "keep printing new output until the task ends")
    .addOption(
      new Option("--since-bytes <n>", "start at this byte offset").argParser(
        byteCount,
      ),
    )
    .addOption(
      new Option("--max-bytes <n>", "print at most this many bytes").argParser(
        byteCount,
      ),
    )
    .addOption(etcd).addOption(prefix).addOption(json)
    .action(async (taskId, opts) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
      for (const s of signals) Deno.addSignalListener(s, stop);
      try {
        done(await runTail(io, taskId, opts, writeAll, ac.signal));
      } catch (e) {
        if (e instanceof Deno.errors.BrokenPipe) done(EXIT.ok);
        else throw e;
      } finally {
        for (const s of signals) Deno.removeSignalListener(s, stop);
      }
    });
}
