import assert from "node:assert/strict";
import { ClusterVersion, DATA_FORMAT } from "../identity/records.ts";
import { dataFormatVerdict } from "./cluster_format.ts";

const KEY = "/boi/cluster/version";
const rec = (format: number) => ({
  value: { format, boi: "9.0.0", written_by: "node-a", written_at: 1 },
});

Deno.test("data format: no record and this format run; a newer one is refused, naming the key, both formats and what to do", () => {
  assert.deepEqual(dataFormatVerdict(KEY, null), { ok: true });
  assert.deepEqual(dataFormatVerdict(KEY, rec(DATA_FORMAT)), { ok: true });
  const v = dataFormatVerdict(KEY, rec(DATA_FORMAT + 1));
  assert.equal(v.ok, false);
  assert.equal(
    !v.ok && v.error,
    `${KEY}: the cluster's records are in data format ${
      DATA_FORMAT + 1
    } (written by boi 9.0.0); boi 0.1.0 reads format ${DATA_FORMAT} only: run a boi that reads format ${
      DATA_FORMAT + 1
    }`,
  );
});

Deno.test("data format: an unreadable record is skipped with a warning (SPEC §2), never a crash", () => {
  // What the schema refuses (readKey then hands over value null).
  for (const raw of [null, { format: "2" }, { format: 0 }, { format: 1 }]) {
    assert.equal(ClusterVersion.safeParse(raw).success, false, String(raw));
  }
  const v = dataFormatVerdict(KEY, { value: null });
  assert.equal(v.ok, true);
  assert.match(
    v.ok ? v.warning ?? "" : "",
    /^\/boi\/cluster\/version: invalid record, skipped/,
  );
});
