/**
 * A record must be the one its key names (SPEC §2): an envelope's `task_id`
 * (and the spec in it), a node record's `node_id`, a spec record's `spec_id`.
 * Every write made about a record is built from those fields, so a record
 * filed under another id's key (written by hand, or copied) is treated as
 * invalid by the nodes (node/core/view_changes.ts) and the CLI (cli/store.ts).
 */
import type { Envelope, NodeRecord, SpecRecord } from "./schema.ts";

/** Why a schema-valid record of `collection` cannot be the one keyed `id`, or null. */
export function recordIdError(
  collection: string,
  id: string,
  data: unknown,
): string | null {
  switch (collection) {
    case "dispatch-queue": {
      const e = data as Envelope;
      return expect("task_id", id, "the id in its key", e.task_id) ??
        expect(
          "spec_id",
          e.task_id.slice(0, e.task_id.indexOf(".")),
          "the spec of its task id",
          e.spec_id,
        );
    }
    case "nodes":
      return expect(
        "node_id",
        id,
        "the id in its key",
        (data as NodeRecord).node_id,
      );
    case "specs":
      return expect(
        "spec_id",
        id,
        "the id in its key",
        (data as SpecRecord).spec_id,
      );
    default:
      return null;
  }
}

function expect(
  field: string,
  want: string,
  why: string,
  got: string,
): string | null {
  return got === want
    ? null
    : `${field} must be ${JSON.stringify(want)}, ${why}: got ${
      JSON.stringify(got)
    }`;
}
