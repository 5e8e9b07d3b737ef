/**
 * SPEC §3/§6: a dispatch is written whole or not at all. A task of the spec
 * id already in etcd (left by an unfinished dispatch, or by hand), whether
 * or not the new spec has a task of that id, fails the first transaction's
 * compare (no key under `dispatch-queue/<spec>.`): nothing of the refused
 * dispatch is written, and what was there is kept.
 */
import assert from "node:assert/strict";
import { Keys } from "../../node/keys.ts";
import { cli, startEtcd } from "../harness/mod.ts";
import { specFile } from "./outage_util.ts";

const keys = new Keys("/boi/");

for (
  const [what, stray] of [
    ["the id of its 300th task", "wide2-1.t299"],
    ["a task id the new spec does not have", "wide2-1.gone"],
  ]
) {
  Deno.test(`a 300-task dispatch over a left task (${what}): one-line refusal, nothing written, the left key untouched`, async () => {
    await using etcd = await startEtcd();
    const client = etcd.client();
    const key = keys.task(stray);
    await client.put(key).value("left by hand");
    const lines = ["name: wide2", "id: wide2-1", "tasks:"];
    for (let i = 0; i < 300; i++) lines.push(`- {id: t${i}, run: "true"}`);
    const r = await cli(etcd, ["dispatch", await specFile(lines.join("\n"))]);
    assert.equal(r.code, 1, r.explain());
    assert.equal(
      r.stderr.trim(),
      "spec wide2-1 already exists: tasks of an unfinished dispatch of it (with no spec record) are still in etcd; nodes delete them after BOI_ORPHAN_GRACE_S, then dispatch again",
    );
    const left = await client.getAll().prefix("/boi/").keys();
    assert.deepEqual(left, [key]);
    assert.equal(await client.get(key).string(), "left by hand");
  });
}
