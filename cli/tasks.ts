/** `tasks list|get|cancel`: inspect and cancel single tasks. */
import {
  type Command,
  InvalidArgumentError,
  Option,
} from "@commander-js/extra-typings";
import {
  Claim,
  Envelope,
  ID_PATTERN,
  TASK_ID_PATTERN,
  TASK_STATES,
  type TaskState,
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
  parseDurationOption,
} from "./context.ts";
import { changeLine, formatDuration, nodeOf, taskTable } from "./format.ts";
import { type Store, type Versioned } from "./store.ts";
import { modIs, putOp } from "./txn_ops.ts";
import { EnvelopeFeed } from "./watch.ts";
import { cancelStep } from "../node/core/cancel.ts";
import { printable } from "../node/printable.ts";

/** Compare-and-swap retries of `tasks cancel` before giving up. */
export const CANCEL_TRIES = 10;
/** Default time `tasks cancel` waits for the claimant to confirm. */
export const CANCEL_WAIT_MS = 10_000;

/** Parses a `--state` value (any case) into a task state. */
export function parseStateOption(value: string): TaskState {
  const upper = value.toUpperCase();
  if (!(TASK_STATES as readonly string[]).includes(upper)) {
    throw new InvalidArgumentError(
      `state must be one of ${TASK_STATES.join(", ")}: got ${
        JSON.stringify(value)
      }`,
    );
  }
  return upper as TaskState;
}

/** The `tasks get --json` document: the envelope plus its mod revision. */
export function withRevision(item: Versioned<Envelope>) {
  return { ...item.value, mod_revision: item.mod_revision };
}

async function getTask(
  store: Store,
  ctx: Ctx,
  id: string,
): Promise<Versioned<Envelope>> {
  const { item, exists } = await store.get(ctx.keys.task(id), Envelope);
  if (!exists) throw new CliError(`task ${id} not found`);
  if (item === null) throw new CliError(`task ${id} has an invalid record`);
  return item;
}

/** Options of `tasks list`. */
export interface ListOptions extends CommonOptions {
  state?: TaskState;
  spec?: string;
}

/** Runs `tasks list`; returns the exit code. */
export async function runList(io: Io, opts: ListOptions): Promise<number> {
  const ctx = new Ctx(io, opts);
  return await ctx.withStore(async (store) => {
    const prefix = ctx.keys.dir("dispatch-queue") +
      (opts.spec !== undefined ? `${opts.spec}.` : "");
    const { items } = await store.list(prefix, Envelope);
    const tasks = items.map((i) => i.value).filter((e) =>
      opts.state === undefined || e.state === opts.state
    );
    if (ctx.json) ctx.printJson(tasks);
    else if (tasks.length === 0) ctx.print("no tasks");
    else for (const line of taskTable(tasks)) ctx.print(line);
    return EXIT.ok;
  });
}

/** Runs `tasks get`; returns the exit code. */
export async function runGet(
  io: Io,
  id: string,
  opts: CommonOptions,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  return await ctx.withStore(async (store) => {
    const item = await getTask(store, ctx, id);
    if (ctx.json) {
      ctx.printJson(withRevision(item));
      return EXIT.ok;
    }
    for (const [k, v] of Object.entries(withRevision(item))) {
      // One line per field whatever a task's strings hold: a newline in
      // `run` printed "state: DONE" under a RUNNING task's real state.
      ctx.print(
        `${k}: ${printable(typeof v === "string" ? v : JSON.stringify(v))}`,
      );
    }
    const claim = await store.get(ctx.keys.claim(id), Claim);
    if (claim.item !== null) {
      const c = claim.item.value;
      ctx.print(
        `claim: ${c.node_id} attempt ${c.attempt} lease ${c.lease_id} fence ${claim.item.create_revision}`,
      );
    }
    return EXIT.ok;
  });
}

/** Options of `tasks cancel`. */
export interface CancelOptions extends CommonOptions {
  timeout?: number;
}

/** Runs `tasks cancel`; returns the exit code (0 once the task is CANCELLED). */
export async function runCancel(
  io: Io,
  id: string,
  opts: CancelOptions,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  const waitMs = opts.timeout ?? CANCEL_WAIT_MS;
  return await ctx.withStore(async (store) => {
    const key = ctx.keys.task(id);
    const first = await getTask(store, ctx, id);
    if (TERMINAL_STATES.has(first.value.state)) {
      throw new CliError(`task ${id} is already ${first.value.state}`);
    }
    const feed = new EnvelopeFeed(store, key, () => {}, (t) => t === id);
    try {
      await feed.start();
      const deadlineAt = io.now() + waitMs;
      let conflicts = 0;
      let announced = false;
      for (;;) {
        const cur = feed.tasks.get(id);
        if (cur === undefined) throw new CliError(`task ${id} was deleted`);
        const step = cancelStep(cur.value, io.now());
        if (step.kind === "done") {
          if (ctx.json) ctx.printJson(withRevision(cur));
          else ctx.print(changeLine(cur.value));
          if (cur.value.state === "CANCELLED") return EXIT.ok;
          throw new CliError(
            `task ${id} ended ${cur.value.state} before it could be cancelled`,
          );
        }
        if (step.kind === "put") {
          const res = await store.txn({
            compare: [modIs(key, cur.mod_revision)],
            success: [putOp(key, step.envelope)],
          });
          if (res.succeeded) {
            const rev = Number(res.header.revision);
            feed.accept(id, {
              ...cur,
              value: step.envelope,
              mod_revision: rev,
            }, rev);
            continue;
          }
          if (++conflicts >= CANCEL_TRIES) {
            throw new CliError(
              `task ${id} kept changing: gave up after ${CANCEL_TRIES} tries`,
            );
          }
          const fresh = await store.get(key, Envelope);
          if (fresh.item !== null) feed.accept(id, fresh.item, fresh.revision);
          else if (!fresh.exists) feed.accept(id, null, fresh.revision);
          continue;
        }
        if (!announced && !ctx.json) {
          announced = true;
          ctx.warn(
            `cancel requested: waiting for ${
              nodeOf(cur.value) ?? "the claimant"
            } to stop ${id}`,
          );
        }
        const left = deadlineAt - io.now();
        if (left <= 0) {
          const node = nodeOf(cur.value);
          throw new CliError(
            `task ${id} is still ${cur.value.state}${
              node ? ` on ${node}` : ""
            } after ${
              formatDuration(waitMs)
            }: cancellation is requested, the node has not confirmed it yet`,
          );
        }
        await feed.changed(left);
      }
    } finally {
      feed.close();
    }
  });
}

/** Registers `tasks list|get|cancel` on the program. */
export function registerTasks(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const tasks = program.command("tasks").description(
    "list, inspect and cancel tasks",
  );
  {
    const [etcd, prefix, json] = commonOptions();
    tasks.command("list")
      .description("tasks, optionally of one state or one spec")
      .addOption(
        new Option("--state <state>", `one of ${TASK_STATES.join(", ")}`)
          .argParser(parseStateOption),
      )
      .addOption(
        new Option("--spec <spec_id>", "only the tasks of this spec")
          .argParser((v) => {
            if (!ID_PATTERN.test(v)) {
              throw new InvalidArgumentError(
                `spec id must match ${ID_PATTERN.source}: got ${
                  JSON.stringify(v)
                }`,
              );
            }
            return v;
          }),
      )
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (opts) => done(await runList(io, opts)));
  }
  {
    const [etcd, prefix, json] = commonOptions();
    tasks.command("get")
      .description("one task's envelope")
      .addArgument(idArgument("<task_id>", "task id", TASK_ID_PATTERN))
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (id, opts) => done(await runGet(io, id, opts)));
  }
  {
    const [etcd, prefix, json] = commonOptions();
    tasks.command("cancel")
      .description(
        "cancel a task; a running one is stopped by its node, which this waits for",
      )
      .addArgument(idArgument("<task_id>", "task id", TASK_ID_PATTERN))
      .addOption(
        new Option(
          "--timeout <duration>",
          "how long to wait for the node to confirm (default 10s)",
        ).argParser(parseDurationOption),
      )
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (id, opts) => done(await runCancel(io, id, opts)));
  }
}
