/**
 * The plugins file (`BOI_PLUGINS`, SPEC §7, §13): which command runs each
 * kind, at most one per kind. Workspace and pool default to the reference
 * plugins; the other kinds run only when configured.
 *
 * @example
 * ```yaml
 * pool:
 *   argv: [deno, run, -q, -P=plugin, "--allow-net=unix:{socket}", --allow-run,
 *          "--allow-env=BOI_*,GRPC_*,PATH,HOME", plugins/pool_local.ts]
 *   env: { BOI_POOL_MODE: noop }
 * hooks:
 *   argv: [deno, run, -q, -P=plugin, "--allow-net=unix:{socket}", plugins/hooks_jsonl.ts]
 *   env: { BOI_HOOKS_FILE: "{data_dir}/events.jsonl" }
 *   tier: audit                # SPEC §8; default best_effort
 *   subscribe: ["task.*", node.left]   # kinds or globs; default every kind
 * router: null   # explicitly none (workspace and pool cannot be null)
 * provisioner:
 *   socket: /run/boi/provisioner.sock   # attach: a sidecar serves it
 * ```
 * An entry has exactly one of `argv` (core starts it) and `socket` (attach
 * mode, docs/plugins.md).
 * @module
 */
import { z } from "zod";
import { fileURLToPath } from "node:url";
import { PLUGIN_KINDS, type PluginKind } from "../../proto/mod.ts";
import type { HookTier } from "./contracts.ts";
import { MAX_SOCKET_PATH, type PluginSpec } from "./supervisor_types.ts";
import { compileSubscriptions } from "../hooks/subscriptions.ts";
import { parseYaml, YamlError } from "../yaml.ts";

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A positive number of seconds, said so when it is not. */
const seconds = () =>
  z.number({ error: "must be a positive number of seconds" }).positive(
    "must be a positive number of seconds",
  );

/** A count of events with a floor, said so when it is not. */
const events = (min: number) => {
  const rule = `must be a whole number of events, at least ${min}`;
  return z.number({ error: rule }).int(rule).min(min, rule);
};

/** Settings only the hooks plugin reads (SPEC §8): refused on another kind. */
const HOOKS_ONLY = [
  "tier",
  "subscribe",
  "wal_segment_events",
  "backpressure_window",
  "hooks_backpressure_window",
] as const;

const Entry = z.object({
  /** @default the kind */
  name: z.string().regex(NAME, "must match ^[a-z0-9][a-z0-9_-]{0,62}$")
    .optional(),
  /** `{socket}`, `{data_dir}`, `{node_id}`, `{name}`, `{kind}` are filled in. */
  argv: z.array(
    z.string({ error: "must be a string (quote it)" }).min(
      1,
      "must not be empty",
    ),
    { error: "must be a list like [deno, run, plugins/x.ts]" },
  ).min(
    1,
    "must name a command",
  ).optional(),
  /** Attach mode: the absolute path of a socket a sidecar serves. */
  socket: z.string().startsWith("/", "must be an absolute path")
    .max(
      MAX_SOCKET_PATH,
      `must be at most ${MAX_SOCKET_PATH} bytes (a Unix socket path)`,
    )
    .optional(),
  env: z.record(
    z.string(),
    z.string({ error: "must be a string (quote it)" }),
    { error: "must be a map of NAME: value" },
  ).optional(),
  cwd: z.string({ error: "must be a directory path" }).optional(),
  /** @default 10 */
  ready_timeout_s: seconds().default(10),
  /** @default 10 */
  health_interval_s: seconds().default(10),
  /** Hooks only (SPEC §8). @default "best_effort" */
  tier: z.enum(["best_effort", "audit"], {
    error: "must be one of best_effort, audit",
  }).optional(),
  /** Hooks only: event kinds or globs (`task.*`) to receive. @default every kind */
  subscribe: z.array(
    z.string({ error: 'must be an event kind or a glob like "task.*"' }),
    { error: 'must be a list of event kinds or globs like ["task.*"]' },
  ).min(
    1,
    "must list at least one event kind or glob (leave it out for every kind)",
  ).optional(),
  /** Hooks only: events per audit WAL segment before it is sealed. @default 10000 */
  wal_segment_events: events(1).optional(),
  /** Hooks only: SPEC §8 `hooks_backpressure_window`, unacked audit events that stall claims. @default 100 */
  backpressure_window: events(10).optional(),
  /** The same setting under the SPEC §8 name. */
  hooks_backpressure_window: events(10).optional(),
}).strict().superRefine((e, ctx) => {
  if (
    e.backpressure_window !== undefined &&
    e.hooks_backpressure_window !== undefined
  ) {
    ctx.addIssue({
      code: "custom",
      path: [],
      message:
        "give hooks_backpressure_window or backpressure_window, not both",
    });
  }
  if ((e.argv === undefined) === (e.socket === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: [],
      message: "needs exactly one of argv (a command core starts) or " +
        "socket (attach to a plugin someone else started)",
    });
  }
  if (e.socket !== undefined) {
    for (const k of ["env", "cwd"] as const) {
      if (e[k] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [k],
          message: "applies to a command only, not to an attached socket",
        });
      }
    }
  }
});

/** Kinds the node cannot do without: leave them out for the reference plugins. */
const REQUIRED: readonly PluginKind[] = ["workspace", "pool"];

const File = z.object(
  Object.fromEntries(
    PLUGIN_KINDS.map((k) => [
      k,
      REQUIRED.includes(k) ? Entry.optional() : Entry.nullable().optional(),
    ]),
  ),
).strict();

/** One plugin the node runs, with the supervisor settings from the file. */
export interface PluginConfig {
  spec: PluginSpec;
  ready_timeout_ms: number;
  health_interval_ms: number;
  /** Delivery tier; meaningful for hooks only. */
  tier: HookTier;
  /** Hooks only: kinds or globs to deliver; null: every kind. */
  subscribe?: string[] | null;
  /** Hooks only: events per audit WAL segment. */
  wal_segment_events?: number;
  /** Hooks only: the back-pressure window. */
  backpressure_window?: number;
}

const REPO = fileURLToPath(new URL("../../", import.meta.url)).replace(
  /\/$/,
  "",
);

/**
 * The node's key material (`<data_dir>/ca`, `identity`, `certs`; the plugin's
 * `{data_dir}` is `<data_dir>/plugins/<name>`): never readable nor writable
 * by a plugin, even where its read permission covers the data dir.
 */
const IDENTITY_DIRS = ["ca", "identity", "certs"]
  .map((d) => `{data_dir}/../../${d}`).join(",");

/**
 * The command of a reference plugin under its permission set in deno.json
 * (`plugin-<set>`: env, and for the pool run), plus what only the spawn
 * knows: its socket, and its own data dir to read and write (issue 15).
 */
export function referencePluginArgv(
  script: string,
  set = "plugin",
  extra: string[] = [],
): string[] {
  return [
    Deno.execPath(),
    "run",
    "-q",
    `-P=${set}`,
    "--allow-net=unix:{socket}",
    "--allow-read={data_dir},{socket}",
    "--allow-write={data_dir},{socket}",
    `--deny-read=${IDENTITY_DIRS}`,
    `--deny-write=${IDENTITY_DIRS}`,
    ...extra,
    `${REPO}/plugins/${script}`,
  ];
}

/** Workspace and pool when the file says nothing about them. */
export function defaultPlugins(): PluginConfig[] {
  const base = { ready_timeout_ms: 10_000, health_interval_ms: 10_000 };
  return [
    {
      spec: {
        name: "workspace",
        kind: "workspace",
        argv: referencePluginArgv("workspace_dir.ts", "plugin-workspace"),
      },
      ...base,
      tier: "best_effort",
    },
    {
      spec: {
        name: "pool",
        kind: "pool",
        argv: referencePluginArgv("pool_local.ts", "plugin-pool"),
      },
      ...base,
      tier: "best_effort",
    },
  ];
}

/**
 * Parses the plugins file (null: no file) into the plugins to run, defaults
 * filled in; throws one-line errors naming the file and field.
 */
export function parsePluginsConfig(
  file: { path: string; text: string } | null,
): PluginConfig[] {
  let doc: unknown = {};
  if (file) {
    try {
      doc = parseYaml(file.text) ?? {};
    } catch (e) {
      if (e instanceof YamlError) throw new Error(e.in(file.path));
      throw e;
    }
  }
  const where = file?.path ?? "plugins";
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new Error(
      `${where}: must be a map of plugin kinds (${
        PLUGIN_KINDS.join(", ")
      }): got ${shown(doc)}`,
    );
  }
  const parsed = File.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === "unrecognized_keys") {
      const key = issue.keys[0];
      const at = [...issue.path, key].join(".");
      throw new Error(
        issue.path.length === 0
          ? `${where}: ${at}: not a plugin kind (one of ${
            PLUGIN_KINDS.join(", ")
          })`
          : `${where}: ${at}: unknown field`,
      );
    }
    const at = issue.path.length ? issue.path.join(".") : "(top level)";
    const value = valueAt(doc, issue.path);
    const need = issue.path.length === 1 &&
        REQUIRED.includes(issue.path[0] as PluginKind) && value === null
      ? `the node needs a ${
        String(issue.path[0])
      } plugin (leave the entry out for the reference one)`
      : issue.message;
    throw new Error(`${where}: ${at}: ${need}: got ${shown(value)}`);
  }
  const entries = parsed.data as Partial<
    Record<PluginKind, z.infer<typeof Entry> | null>
  >;
  const defaults = new Map(defaultPlugins().map((p) => [p.spec.kind, p]));
  const out: PluginConfig[] = [];
  for (const kind of PLUGIN_KINDS) {
    const e = entries[kind];
    if (e === null) continue; // explicitly none
    if (e === undefined) {
      const d = defaults.get(kind);
      if (d) out.push(d);
      continue;
    }
    if (kind !== "hooks") {
      const f = HOOKS_ONLY.find((k) => e[k] !== undefined);
      if (f !== undefined) {
        throw new Error(
          `${where}: ${kind}.${f}: applies to the hooks plugin only`,
        );
      }
    }
    out.push({
      spec: {
        name: e.name ?? kind,
        kind,
        argv: e.argv ?? [],
        env: e.env ?? {},
        cwd: e.cwd,
        ...(e.socket !== undefined ? { socket: e.socket } : {}),
      },
      ready_timeout_ms: e.ready_timeout_s * 1000,
      health_interval_ms: e.health_interval_s * 1000,
      tier: e.tier ?? "best_effort",
      subscribe: e.subscribe ?? null,
      wal_segment_events: e.wal_segment_events,
      backpressure_window: e.backpressure_window ??
        e.hooks_backpressure_window,
    });
    if (e.subscribe) {
      compileSubscriptions(
        e.subscribe,
        `${file?.path ?? "plugins"}: ${kind}.subscribe`,
      );
    }
  }
  // Names key sockets, data dirs and `boi plugin restart <name>`.
  const names = new Set<string>();
  for (const p of out) {
    if (names.has(p.spec.name)) {
      throw new Error(
        `${
          file?.path ?? "plugins"
        }: ${p.spec.kind}.name: ${p.spec.name} is used twice`,
      );
    }
    names.add(p.spec.name);
  }
  return out;
}

/** The value at a zod issue path, for the error line. */
function valueAt(doc: unknown, path: readonly PropertyKey[]): unknown {
  let v = doc;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** A value as an error line shows it: JSON, cut to 80 characters. */
function shown(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
