/** Where the harness finds the project and leaves its logs. */
import { fileURLToPath } from "node:url";

/** The repository root: nodes and the CLI run from here so `-P=...` finds deno.json. */
export const REPO_ROOT: string = fileURLToPath(
  new URL("../../", import.meta.url),
)
  .replace(/\/$/, "");

/**
 * Logs of every process a test starts land here (kept after the run, for
 * failure reports). Override with `BOI_TEST_ARTIFACTS`.
 */
export function artifactsDir(): string {
  return Deno.env.get("BOI_TEST_ARTIFACTS") ?? `${REPO_ROOT}/tests/artifacts`;
}

let seq = 0;

/** A fresh log file path under the artifacts dir, unique across parallel test files. */
export async function artifactPath(
  kind: string,
  name: string,
): Promise<string> {
  const dir = `${artifactsDir()}/${kind}`;
  await Deno.mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(
    /\.\d+Z$/,
    "",
  );
  seq += 1;
  return `${dir}/${name}-${stamp}-${Deno.pid}-${seq}.log`;
}

/**
 * A temp dir under /tmp: the `node` permission set may write only `.boi` and
 * `/tmp`, so node data dirs must live there whatever TMPDIR says.
 */
export function makeTempDir(prefix: string): Promise<string> {
  return Deno.makeTempDir({ dir: "/tmp", prefix });
}

/** The environment for child processes: ours minus every `BOI_*` variable, so tests are hermetic. */
export function childEnv(
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("BOI_")) env[k] = v;
  }
  env.NO_COLOR = "1";
  return { ...env, ...extra };
}
