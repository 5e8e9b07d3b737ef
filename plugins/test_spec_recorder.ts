/**
 * A test fixture: the reference directory workspace whose `prepare` handler
 * also appends what it was handed to `BOI_RECORDER_FILE`, one JSON line
 * `{spec_id, task_id, length, digest}` per call (digest: SHA-256 of
 * `spec_yaml`), so a test can prove the handler saw the full YAML on every
 * call whatever the wire carried (the `spec_cache` tests).
 *
 * Env: `BOI_RECORDER_SPEC_CACHE=off` — do not announce `spec_cache`;
 * `BOI_RECORDER_SPEC_CACHE=<n>` — hold at most n specs;
 * `BOI_RECORDER_SPEC_CACHE=fake` — announce `spec_cache` without the cache
 *   (a broken plugin the conformance checks must fail);
 * `BOI_RECORDER_PROTO_MINOR=0` — a 1.0 plugin (no `mux`, no `spec_cache`).
 *
 * Run: `deno run -P=plugin --allow-net=unix:<socket> plugins/test_spec_recorder.ts`
 * (the record file under `/tmp` or `.boi/`).
 * @module
 */
import { PROTO_MAJOR, PROTO_MINOR } from "../proto/mod.ts";
import {
  SPEC_CACHE_CAPABILITY,
  specDigest,
} from "../node/exec/spec_cache_wire.ts";
import { pluginEnv, servePlugin } from "./sdk/mod.ts";
import { dirWorkspaceHandlers } from "./workspace_dir.ts";

if (import.meta.main) {
  const record = Deno.env.get("BOI_RECORDER_FILE") ?? "";
  if (record === "") {
    throw new Error("test_spec_recorder: set BOI_RECORDER_FILE");
  }
  const cacheEnv = Deno.env.get("BOI_RECORDER_SPEC_CACHE") ?? "";
  const minor = Deno.env.get("BOI_RECORDER_PROTO_MINOR");
  const dir = dirWorkspaceHandlers(`${pluginEnv().data_dir}/recorder-work`);
  await servePlugin({
    kind: "workspace",
    name: "test_spec_recorder",
    version: "1.0.0",
    proto: {
      major: PROTO_MAJOR,
      minor: minor === undefined ? PROTO_MINOR : Number(minor),
    },
    capabilities: cacheEnv === "fake" ? [SPEC_CACHE_CAPABILITY] : [],
    spec_cache: cacheEnv === "off" || cacheEnv === "fake"
      ? false
      : cacheEnv === ""
      ? {}
      : { specs: Number(cacheEnv) },
    prepare(req, ctx) {
      Deno.writeTextFileSync(
        record,
        JSON.stringify({
          spec_id: req.spec_id,
          task_id: req.task_id,
          length: req.spec_yaml.length,
          digest: specDigest(req.spec_yaml),
        }) + "\n",
        { append: true },
      );
      return dir.prepare(req, ctx);
    },
    cleanup: dir.cleanup,
  });
}
