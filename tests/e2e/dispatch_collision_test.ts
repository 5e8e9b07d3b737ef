/**
 * SPEC §3/§6: a dispatch is written whole or not at all. A task key already
 * in etcd in a later chunk (left by an unfinished dispatch, or by hand) fails
 * that chunk's `version == 0` compare; the chunks written before it are taken
 * back, so nothing of the refused dispatch stays, and what was there is kept.
 */
import assert from "node:assert/strict";
import { Keys } from "../../node/keys.ts";
import { cli, startEtcd } from "../harness/mod.ts";
import { specFile } from "./outage_util.ts";

const keys = new Keys("/boi/");

Deno.test("a collision in the third transaction of a 300-task dispatch: one-line refusal, the first two chunks rolled back, the colliding key untouched", async () => {
  await using etcd = await startEtcd();
  const client = etcd.client();
  const stray = keys.task("wide2-1.t299");
  await client.put(stray).value("left by hand");
  const lines = ["name: wide2", "id: wide2-1", "tasks:"];
  for (let i = 0; i < 300; i++) lines.push(`- {id: t${i}, run: "true"}`);
  const r = await cli(etcd, ["dispatch", await specFile(lines.join("\n"))]);
  assert.equal(r.code, 1, r.explain());
  assert.equal(
    r.stderr.trim(),
    "spec wide2-1 already exists: tasks of an unfinished dispatch (with no spec record) hold its task ids",
  );
  const left = await client.getAll().prefix("/boi/").keys();
  assert.deepEqual(left, [stray]);
  assert.equal(await client.get(stray).string(), "left by hand");
});
