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
 *   tier: audit
 * router: null   # explicitly none
 * ```
 * @module
 */
import { z } from "zod";
import YAML from "yaml";
import { fileURLToPath } from "node:url";
import { PLUGIN_KINDS, type PluginKind } from "../../proto/mod.ts";
import type { HookTier } from "./contracts.ts";
import type { PluginSpec } from "./supervisor.ts";

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const Entry = z.object({
  /** @default the kind */
  name: z.string().regex(NAME, "must match ^[a-z0-9][a-z0-9_-]{0,62}$")
    .optional(),
  /** `{socket}`, `{data_dir}`, `{node_id}`, `{name}`, `{kind}` are filled in. */
  argv: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional(),
  /** @default 10 */
  ready_timeout_s: z.number().positive().default(10),
  /** @default 10 */
  health_interval_s: z.number().positive().default(10),
  /** Hooks only (SPEC §8). @default "best_effort" */
  tier: z.enum(["best_effort", "audit"]).optional(),
}).strict();

const File = z.object(
  Object.fromEntries(PLUGIN_KINDS.map((k) => [k, Entry.nullable().optional()])),
).strict();

/** One plugin the node runs, with the supervisor settings from the file. */
export interface PluginConfig {
  spec: PluginSpec;
  ready_timeout_ms: number;
  health_interval_ms: number;
  /** Delivery tier; meaningful for hooks only. */
  tier: HookTier;
}

const REPO = fileURLToPath(new URL("../../", import.meta.url)).replace(
  /\/$/,
  "",
);

/** Flags of the reference pool: tasks run any program and inherit these variables. */
const POOL_FLAGS = [
  "--allow-run",
  "--allow-env=BOI_*,GRPC_*,PATH,HOME,LANG,LC_ALL,TMPDIR,TZ,USER,SHELL",
];

/** The command of a reference plugin with its narrowest permissions. */
export function referencePluginArgv(
  script: string,
  extra: string[] = [],
): string[] {
  return [
    Deno.execPath(),
    "run",
    "-q",
    "-P=plugin",
    "--allow-net=unix:{socket}",
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
        argv: referencePluginArgv("workspace_dir.ts"),
      },
      ...base,
      tier: "best_effort",
    },
    {
      spec: {
        name: "pool",
        kind: "pool",
        argv: referencePluginArgv("pool_local.ts", POOL_FLAGS),
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
      doc = YAML.parse(file.text) ?? {};
    } catch (e) {
      throw new Error(
        `${file.path}: invalid YAML: ${(e as Error).message.split("\n")[0]}`,
      );
    }
  }
  const parsed = File.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new Error(`${file?.path ?? "plugins"}: ${where}: ${issue.message}`);
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
    out.push({
      spec: {
        name: e.name ?? kind,
        kind,
        argv: e.argv,
        env: e.env,
        cwd: e.cwd,
      },
      ready_timeout_ms: e.ready_timeout_s * 1000,
      health_interval_ms: e.health_interval_s * 1000,
      tier: e.tier ?? "best_effort",
    });
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
