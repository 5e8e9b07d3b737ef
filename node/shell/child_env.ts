/**
 * The environment the node's own children (the locked node, `getent`,
 * `prlimit`, a local etcd) inherit. Deno refuses to start a child whose env
 * holds a dynamic-loader variable (`LD_*`, `DYLD_*`) unless `--allow-run` is
 * unrestricted (NotCapable), and a permission-locked process has a run list:
 * one `LD_LIBRARY_PATH` in an operator's shell (CUDA and conda hosts set it)
 * made `deno task node` die with a stack trace. Tasks are not affected: the
 * pool's spawner builds a task's env from the spec, not from ours.
 * @module
 */

const LOADER = /^(LD_|DYLD_)/;

/** Our env without the loader variables, and the names that were dropped. */
export function loaderFreeEnv(): {
  env: Record<string, string>;
  dropped: string[];
} {
  const env: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (LOADER.test(k)) dropped.push(k);
    else env[k] = v;
  }
  return { env, dropped: dropped.sort() };
}
