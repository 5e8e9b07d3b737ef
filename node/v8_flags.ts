/**
 * The V8 flags every node process runs with: one definition for the
 * launcher's command (node/launch.ts, and so `deno task node:flags`) and the
 * test harness's nodes, so the bench measures what an operator runs.
 *
 * `--max-semi-space-size=4`: V8's young generation holds up to two 16 MiB
 * semi-spaces by default, and under load a node fills them with garbage
 * that dies at the next scavenge. 4 MiB semi-spaces took the 5,000-task
 * burst's node RSS peak from 225–233 to 176–188 MiB (20,000 queued: 359 →
 * 310) at the same node CPU per task (docs/architecture.md, "Node RSS under
 * load"). Old-generation flags (`--heap-growing-percent`,
 * `--memory-saver-mode`) cut more but cost 20–100 % node CPU: not here.
 * @module
 */

/** The flags, without the `--v8-flags=` wrapper. */
export const NODE_V8_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/** The flags as one `deno run` argument; Deno merges several `--v8-flags=`. */
export function nodeV8FlagsArg(): string {
  return `--v8-flags=${NODE_V8_FLAGS.join(",")}`;
}
