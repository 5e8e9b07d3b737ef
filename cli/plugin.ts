/**
 * `plugin list`, `plugin restart <name>`, `plugin test [--kind K] <cmd...>`
 * (SPEC §7) and `plugin queue <plugin>` (SPEC §8, cli/plugin_queue.ts).
 *
 * - `list` reads the records nodes publish under `/boi/plugins/{node}/{name}`.
 * - `restart` finds the node's `addr` in `/boi/nodes/{id}` and POSTs
 *   `/internal/plugins/{name}/restart` there (node/shell/plugin_http.ts).
 * - `test` runs the conformance checks (plugins/conformance.ts) against any
 *   plugin command. It starts that command, so it needs the run permission,
 *   which the narrow `cli` set does not grant: run it as
 *   `deno task plugin-test -- <cmd...>` (permission set `plugin-test`).
 *   Without `--kind` the kind is found by starting the command once
 *   (plugins/conformance_detect.ts).
 */
import { securedFetch } from "./node_http.ts";
import {
  type Command,
  InvalidArgumentError,
  Option,
} from "@commander-js/extra-typings";
import { ID_PATTERN, NodeRecord } from "../node/schema.ts";
import { PluginRecord } from "../node/plugins/plugin_record.ts";
import { isPluginKind, PLUGIN_KINDS, type PluginKind } from "../proto/kinds.ts";
import {
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  idArgument,
  type Io,
} from "./context.ts";
import { CliError } from "./errors.ts";
import { adminHeaders } from "./admin_secret.ts";
import type { Store } from "./store.ts";
import { table } from "./format.ts";
import { runPluginQueue } from "./plugin_queue.ts";
import { fetchError } from "../node/fetch_error.ts";

/** `/boi/plugins/{node_id}/{name}` as the node writes it (one schema: node/plugins/plugin_record.ts). */
export const PluginRecordSchema = PluginRecord;

/** One entry of `plugin list --json`. */
export interface PluginRow extends PluginRecord {
  node_id: string;
  name: string;
}

/** How long `plugin restart` waits for the node (a start may take ready_timeout_s). */
export const RESTART_TIMEOUT_MS = 60_000;

/** Runs `plugin list`; returns the exit code. */
export async function runPluginList(
  io: Io,
  opts: CommonOptions & { node?: string },
): Promise<number> {
  const ctx = new Ctx(io, opts);
  return await ctx.withStore(async (store) => {
    const dir = ctx.keys.dir("plugins");
    const prefix = opts.node === undefined ? dir : `${dir}${opts.node}/`;
    const { items } = await store.list(prefix, PluginRecordSchema);
    const rows: PluginRow[] = items.map((it) => {
      const rest = it.key.slice(dir.length);
      const slash = rest.indexOf("/");
      return {
        node_id: rest.slice(0, slash),
        name: rest.slice(slash + 1),
        ...it.value,
      };
    }).sort((a, b) =>
      a.node_id.localeCompare(b.node_id) || a.name.localeCompare(b.name)
    );
    if (ctx.json) {
      ctx.printJson(rows);
      return EXIT.ok;
    }
    if (rows.length === 0) {
      ctx.print(
        opts.node === undefined
          ? "no plugin records"
          : `no plugin records for node ${opts.node}`,
      );
      return EXIT.ok;
    }
    for (
      const line of table(
        ["NODE", "NAME", "KIND", "STATE", "CRASHES", "PROTO", "CAPS", "REASON"],
        rows.map((r) => [
          r.node_id,
          r.name,
          r.kind,
          r.state,
          String(r.crashes.length),
          r.proto_minor === null ? "-" : `1.${r.proto_minor}`,
          r.capabilities.join(",") || "-",
          r.reason ?? "-",
        ]),
      )
    ) ctx.print(line);
    return EXIT.ok;
  });
}

/** The node `plugin restart` talks to: `--node`, else `$BOI_NODE_ID`, else the only live node. */
async function resolveNode(
  ctx: Ctx,
  node: string | undefined,
): Promise<{ node_id: string; addr: string; headers: Record<string, string> }> {
  return await ctx.withStore(async (store) => ({
    ...await findNode(ctx, store, node),
    headers: await adminHeaders(ctx, store),
  }));
}

async function findNode(
  ctx: Ctx,
  store: Store,
  node: string | undefined,
): Promise<{ node_id: string; addr: string }> {
  const id = node ?? ctx.io.env("BOI_NODE_ID");
  if (id !== undefined && id !== "") {
    const rec = await store.get(ctx.keys.node(id), NodeRecord);
    if (rec.item === null) {
      throw new CliError(`node ${id} is not live (no ${ctx.keys.node(id)})`);
    }
    return { node_id: id, addr: rec.item.value.addr };
  }
  const { items } = await store.list(ctx.keys.dir("nodes"), NodeRecord);
  if (items.length === 1) {
    return { node_id: items[0].value.node_id, addr: items[0].value.addr };
  }
  throw new CliError(
    items.length === 0
      ? "no live nodes"
      : `${items.length} live nodes: pass --node ID (or set BOI_NODE_ID)`,
    items.length === 0 ? EXIT.failed : EXIT.usage,
  );
}

/** Runs `plugin restart`; exit 0 once the plugin is ready again, 1 otherwise. */
export async function runPluginRestart(
  io: Io,
  name: string,
  opts: CommonOptions & { node?: string },
  fetchFn: typeof fetch = fetch,
): Promise<number> {
  const ctx = new Ctx(io, opts);
  fetchFn = await securedFetch(ctx, fetchFn); // https with the CLI certificate in a secure cluster
  const { node_id, addr, headers } = await resolveNode(ctx, opts.node);
  const url = `http://${addr}/internal/plugins/${name}/restart`;
  let res: Response;
  try {
    res = await fetchFn(url, {
      method: "POST",
      headers,
      signal: AbortSignal.timeout(RESTART_TIMEOUT_MS),
    });
  } catch (e) {
    throw new CliError(
      `cannot reach node ${node_id} at ${addr}: ${fetchError(e)}`,
    );
  }
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text.trim() };
  }
  if (res.status !== 200) {
    throw new CliError(
      `node ${node_id}: ${String(body.error ?? `HTTP ${res.status}`)}`,
    );
  }
  const ready = body.state === "ready";
  if (ctx.json) {
    ctx.printJson(body);
  } else {
    ctx.print(
      `${name} on ${node_id}: ${body.state}` +
        (body.detail_state !== body.state ? ` (${body.detail_state})` : "") +
        (body.pid ? `, pid ${body.pid}` : "") +
        (body.reason ? `: ${body.reason}` : ""),
    );
    const lost = Array.isArray(body.lost_tasks) ? body.lost_tasks : null;
    if (body.kind === "pool" && lost !== null) {
      ctx.print(
        body.attached === true
          ? "running work: kept (an attached pool is reconnected to, not restarted)"
          : lost.length === 0
          ? "running work: none was running"
          : `running work: not drained; ${lost.length} running attempt${
            lost.length === 1 ? "" : "s"
          } re-queued as attempt lost (no retry spent): ${lost.join(", ")}`,
      );
    }
  }
  return ready ? EXIT.ok : EXIT.failed;
}

/** Runs `plugin test`; exit 0 when every check passed, 1 otherwise. */
export async function runPluginTest(
  io: Io,
  given: PluginKind | undefined,
  argv: string[],
  opts: CommonOptions & { readyTimeout?: number },
): Promise<number> {
  const ctx = new Ctx(io, opts);
  if (Deno.permissions.querySync({ name: "run" }).state !== "granted") {
    throw new CliError(
      "plugin test starts the plugin and needs the run permission, which the cli permission set does not grant: " +
        "use `deno task plugin-test -- <cmd...>` (permission set plugin-test)",
    );
  }
  let kind = given;
  if (kind === undefined) {
    const { detectPluginKind } = await import(
      "../plugins/conformance_detect.ts"
    );
    const found = await detectPluginKind(argv, {
      ready_timeout_ms: opts.readyTimeout,
    });
    if (found.kind === null) {
      throw new CliError(
        `plugin test: cannot tell the plugin's kind: ${found.reason}: pass --kind <${
          PLUGIN_KINDS.join("|")
        }>`,
      );
    }
    kind = found.kind;
  }
  const { runConformance } = await import("../plugins/conformance.ts");
  const result = await runConformance(argv, kind, {
    ready_timeout_ms: opts.readyTimeout,
  });
  if (ctx.json) {
    ctx.printJson(result);
  } else {
    for (const c of result.checks) {
      ctx.print(`${c.ok ? "✓" : "✗"} ${c.name}: ${c.detail}`);
    }
    const failed = result.checks.filter((c) => !c.ok).length;
    ctx.print(
      failed === 0
        ? `ok: ${result.checks.length} checks passed`
        : `FAILED: ${failed} of ${result.checks.length} checks failed`,
    );
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}

/** Registers `plugin list|restart|test` on the program. */
export function registerPlugin(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const plugin = program
    .command("plugin")
    .description("plugins of the nodes: list, restart, conformance test")
    // `plugin test` passes the plugin's own flags through untouched.
    .enablePositionalOptions();
  const nodeOption = () =>
    new Option("--node <id>", "node id").argParser((v) => {
      if (!ID_PATTERN.test(v)) {
        throw new InvalidArgumentError(
          `--node must match ${ID_PATTERN.source}: got ${JSON.stringify(v)}`,
        );
      }
      return v;
    });
  {
    const [etcd, prefix, json] = commonOptions();
    plugin.command("list")
      .description("plugin records: state, crashes, protocol, capabilities")
      .addOption(nodeOption())
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (opts) => done(await runPluginList(io, opts)));
  }
  {
    const [etcd, prefix, json] = commonOptions();
    plugin.command("restart")
      .description(
        "forget a plugin's crashes and start it afresh (default node: $BOI_NODE_ID or the only live node)",
      )
      .addArgument(idArgument("<name>", "plugin name", ID_PATTERN))
      .addOption(nodeOption())
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (name, opts) =>
        done(await runPluginRestart(io, name, opts))
      );
  }
  {
    const [etcd, prefix, json] = commonOptions();
    plugin.command("queue")
      .description(
        "a hooks plugin's queue on every node: unacked, HWM, oldest unacked, stalls",
      )
      .addArgument(idArgument("<plugin>", "hooks plugin name", ID_PATTERN))
      .addOption(etcd).addOption(prefix).addOption(json)
      .action(async (name, opts) => done(await runPluginQueue(io, name, opts)));
  }
  {
    // --etcd is taken like every command's (SPEC §11) and left unused: a
    // plugin never sees etcd, and the checks need none.
    const [etcd, , json] = commonOptions();
    plugin.command("test")
      .description(
        "run the conformance checks against a plugin command (needs the run permission: deno task plugin-test)",
      )
      .addOption(
        new Option(
          "--kind <kind>",
          `plugin kind: ${
            PLUGIN_KINDS.join(", ")
          } (default: the service its Handshake answers on)`,
        )
          .argParser((v) => {
            if (!isPluginKind(v)) {
              throw new InvalidArgumentError(
                `--kind must be one of ${PLUGIN_KINDS.join(", ")}: got ${
                  JSON.stringify(v)
                }`,
              );
            }
            return v;
          }),
      )
      .addOption(
        new Option("--ready-timeout <ms>", "BOI_READY deadline in ms")
          .argParser((v) => {
            const n = Number(v);
            if (!Number.isInteger(n) || n <= 0) {
              throw new InvalidArgumentError(
                `--ready-timeout must be a positive integer (ms): got ${
                  JSON.stringify(v)
                }`,
              );
            }
            return n;
          }),
      )
      .addOption(etcd).addOption(json)
      .argument("<cmd...>", "the plugin command and its arguments")
      .passThroughOptions()
      .action(async (cmd, opts) =>
        done(
          await runPluginTest(
            io,
            opts.kind as PluginKind | undefined,
            cmd,
            opts,
          ),
        )
      );
  }
}
