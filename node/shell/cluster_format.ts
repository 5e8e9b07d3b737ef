/**
 * The node's side of `/boi/cluster/version` (SPEC §2): a node refuses to
 * register on a cluster whose records follow a data format newer than the
 * one this boi reads, instead of misreading them. No record (a cluster that
 * never ran `cluster init`) means format 1.
 */
import type { Etcd3 } from "etcd3";
import type { Keys } from "../keys.ts";
import { ClusterVersion, DATA_FORMAT } from "../identity/records.ts";
import { readKey } from "../identity/kv.ts";
import { VERSION } from "../version.ts";

/** The node may not run here: the cluster's data format is newer. */
export class DataFormatError extends Error {}

/** Pure: what the record read at `key` (null: absent; `value` null: invalid) means for this node. */
export function dataFormatVerdict(
  key: string,
  read: { value: ClusterVersion | null } | null,
): { ok: true; warning?: string } | { ok: false; error: string } {
  if (read === null) return { ok: true };
  const v = read.value;
  if (v === null) {
    // SPEC §2: an unreadable record is logged and skipped.
    return {
      ok: true,
      warning:
        `${key}: invalid record, skipped (expected {format, boi, written_by, written_at})`,
    };
  }
  if (v.format <= DATA_FORMAT) return { ok: true };
  return {
    ok: false,
    error:
      `${key}: the cluster's records are in data format ${v.format} (written by boi ${v.boi}); boi ${VERSION} reads format ${DATA_FORMAT} only: run a boi that reads format ${v.format}`,
  };
}

/**
 * Reads the record (readKey's 5 s deadline: a blackholed etcd must not hang
 * a re-registration) and throws {@linkcode DataFormatError} when this node
 * may not run here. Returns the warning for an unreadable record, for the
 * caller to log once.
 */
export async function checkDataFormat(
  client: Etcd3,
  keys: Keys,
): Promise<string | null> {
  const key = keys.clusterVersion();
  const verdict = dataFormatVerdict(
    key,
    await readKey(client, key, ClusterVersion),
  );
  if (!verdict.ok) throw new DataFormatError(verdict.error);
  return verdict.warning ?? null;
}
