/** Dispatching a spec from a file, for the secure_* tests (which have no `Cluster`). */
import { cli, type EtcdLike, makeTempDir } from "../harness/mod.ts";

/** Writes `yaml` to a temp file and dispatches it; `env` carries the CLI's certificates. */
export async function dispatchTo(
  etcd: EtcdLike,
  yaml: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ spec_id: string; task_ids: string[] }> {
  const dir = await makeTempDir("boi-spec-");
  await Deno.writeTextFile(`${dir}/spec.yaml`, yaml);
  const r = await cli(
    etcd,
    ["dispatch", `${dir}/spec.yaml`, "--json", ...args],
    { env },
  );
  if (r.code !== 0) throw new Error(`dispatch exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
