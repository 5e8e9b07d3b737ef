/**
 * Conformance checks of the `spec_cache` capability (node/exec/
 * spec_cache_wire.ts), run for a workspace plugin that announced it: a
 * Prepare that carries only the digest of a spec sent before is answered like
 * a full one, and a digest the plugin does not hold answers the retryable miss
 * (never a workdir prepared without the spec).
 * @module
 */
import type { PluginConnection } from "../node/exec/grpc_client.ts";
import { CODECS } from "../node/exec/grpc_codec.ts";
import {
  isSpecCacheMiss,
  PREPARE_WIRE,
  SPEC_CACHE_CAPABILITY,
  SPEC_CACHE_MISS,
  specDigest,
} from "../node/exec/spec_cache_wire.ts";
import { assert, type Checks } from "./conformance_kinds.ts";

/** Runs the checks when the Handshake negotiated `spec_cache`; `tag` as in KIND_CHECKS. */
export async function specCacheChecks(
  conn: PluginConnection,
  checks: Checks,
  tag: string,
): Promise<void> {
  if (!conn.negotiated.includes(SPEC_CACHE_CAPABILITY)) return;
  const spec_id = `conformance-cache${tag}`;
  const yaml = "name: conformance-cache\ntasks:\n  - id: t\n    run: true\n";
  const digest = specDigest(yaml);
  await checks.run(
    "workspace: spec_cache: a Prepare with only the digest of a spec sent before",
    async () => {
      const workdirs: string[] = [];
      for (const [t, cached] of [["t1", false], ["t2", true]] as const) {
        const r = await conn.unary(PREPARE_WIRE, {
          spec_id,
          task_id: `${spec_id}.${t}`,
          spec_yaml: cached ? "" : yaml,
          hints: {},
          spec_digest: digest,
          spec_yaml_cached: cached,
        });
        assert(
          r.workdir.startsWith("/"),
          `workdir not absolute: "${r.workdir}"`,
        );
        workdirs.push(r.workdir);
      }
      for (const [i, workdir] of workdirs.entries()) {
        await conn.unary(CODECS.workspace.cleanup, {
          spec_id,
          task_id: `${spec_id}.t${i + 1}`,
          workdir,
        });
      }
      return `full then cached: ${workdirs.join(", ")}`;
    },
  );
  await checks.run(
    "workspace: spec_cache: a digest never sent answers the retryable miss",
    async () => {
      const other = `conformance-nocache${tag}`;
      try {
        const r = await conn.unary(PREPARE_WIRE, {
          spec_id: other,
          task_id: `${other}.t1`,
          spec_yaml: "",
          hints: {},
          spec_digest: specDigest(`never sent ${tag}`),
          spec_yaml_cached: true,
        });
        throw new Error(
          `answered with workdir "${r.workdir}": expected FAILED_PRECONDITION ${SPEC_CACHE_MISS}`,
        );
      } catch (e) {
        assert(
          isSpecCacheMiss(e),
          `expected FAILED_PRECONDITION "${SPEC_CACHE_MISS}: …": got ${
            (e as Error).message
          }`,
        );
        return (e as Error).message;
      }
    },
  );
}
