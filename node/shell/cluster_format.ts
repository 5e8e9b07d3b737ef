/**
 * The node's side of `/boi/cluster/version` (SPEC §2): a node refuses to
 * register on a cluster whose records follow a data format newer than the
 * one this boi reads, instead of misreading them. No record (a cluster that
 * never ran `cluster init`) means format 1.
 */
import type { Etcd3 } from "etcd3";
import type { Keys } from "../keys.ts";
import { ClusterVersion, DATA_FORMAT } from "../identity/records.ts";
import { VERSION } from "../version.ts";
import type { Logger } from "./log.ts";

/** The node may not run here: the cluster's data format is newer. */
export class DataFormatError extends Error {}

/** Pure: what the record `raw` at `key` means for this node. */
export function dataFormatVerdict(
  key: string,
  raw: string | null,
): { ok: true; warning?: string } | { ok: false; error: string } {
  if (raw === null) return { ok: true };
  let parsed;
  try {
    parsed = ClusterVersion.safeParse(JSON.parse(raw));
  } catch {
    parsed = null;
  }
  if (!parsed?.success) {
    // SPEC §2: an unreadable record is logged and skipped.
    return {
      ok: true,
      warning:
        `${key}: invalid record, skipped (expected {format, boi, written_by, written_at})`,
    };
  }
  const v = parsed.data;
  if (v.format <= DATA_FORMAT) return { ok: true };
  return {
    ok: false,
    error:
      `${key}: the cluster's records are in data format ${v.format} (written by boi ${v.boi}); boi ${VERSION} reads format ${DATA_FORMAT} only: run a boi that reads format ${v.format}`,
  };
}

/** Reads the record and throws {@linkcode DataFormatError} when this node may not run here. */
export async function checkDataFormat(
  client: Etcd3,
  keys: Keys,
  log: Logger,
): Promise<void> {
  const key = keys.clusterVersion();
  const verdict = dataFormatVerdict(key, await client.get(key).string());
  if (!verdict.ok) throw new DataFormatError(verdict.error);
  if (verdict.warning) log.warn(verdict.warning);
}
