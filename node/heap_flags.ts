/**
 * The V8 heap flags the node process runs with, one definition for
 * `deno task node` (node/launch.ts) and the test harness's nodes, so the
 * bench measures what an operator runs. See docs/architecture.md, "Node RSS
 * under load".
 * @module
 */

/**
 * 16 MiB semi-spaces (a 32 MiB young generation). V8 sizes them from the
 * host's memory: 32 MiB each on a host with 16 GiB or more, so the node's
 * young generation alone was 64 MiB resident under load, nearly all of it
 * garbage. Measured in the control-plane row (5,000 tasks) and with 20,000
 * queued: 25–40 MiB less peak RSS, node CPU per task unchanged.
 */
export const NODE_SEMI_SPACE_MIB = 16;

/**
 * The `deno run` flags for the node's heap. Empty when the operator sets the
 * semi-space size in `DENO_V8_FLAGS` (Deno applies `--v8-flags` after that
 * variable, so ours would override theirs).
 */
export function nodeHeapFlags(denoV8Flags: string | undefined): string[] {
  if (denoV8Flags?.includes("semi-space-size")) return [];
  return [`--v8-flags=--max-semi-space-size=${NODE_SEMI_SPACE_MIB}`];
}
