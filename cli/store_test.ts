import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { IKeyValue } from "etcd3";
import { Envelope, NodeRecord } from "../node/schema.ts";
import { cleanReason, decodeKv, probeTimeout } from "./store.ts";
import { modIs, prefixEnd, versionIs } from "./txn_ops.ts";
import { envelope } from "./test_util.ts";

Deno.test("prefixEnd increments the last byte below 0xff", () => {
  assert.equal(prefixEnd(Buffer.from("/boi/")).toString(), "/boi0");
  assert.deepEqual([...prefixEnd(Buffer.from([0x61, 0xff]))], [0x62]);
  assert.deepEqual([...prefixEnd(Buffer.from([0xff]))], [0]);
});

Deno.test("compares name the key, target and value", () => {
  assert.deepEqual(versionIs("/k", 0), {
    key: Buffer.from("/k"),
    target: "Version",
    result: "Equal",
    version: 0,
  });
  assert.equal(modIs("/k", 7).mod_revision, 7);
});

Deno.test("cleanReason keeps the cause of grpc errors", () => {
  assert.equal(
    cleanReason(
      "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ",
    ),
    "connect ECONNREFUSED 127.0.0.1:1",
  );
  assert.equal(
    cleanReason(
      "4 DEADLINE_EXCEEDED: Deadline exceeded after 1.998s,name resolution: 0.015s,Waiting for LB pick",
    ),
    "no answer within 1.998s (no connection)",
  );
  assert.equal(
    cleanReason("14 UNAVAILABLE: Name resolution failed for target dns:x:1"),
    "Name resolution failed for target dns:x:1",
  );
});

Deno.test("decodeKv validates and reports invalid records", () => {
  const kv = (value: string): IKeyValue => ({
    key: Buffer.from("/boi/dispatch-queue/s-aaaaaa.t"),
    value: Buffer.from(value),
    create_revision: "3",
    mod_revision: "5",
    version: "2",
    lease: "0",
  });
  const warnings: string[] = [];
  const warn = (l: string) => warnings.push(l);
  const ok = decodeKv(kv(JSON.stringify(envelope())), Envelope, warn);
  assert.equal(ok?.mod_revision, 5);
  assert.equal(ok?.create_revision, 3);
  assert.equal(ok?.value.task_id, "s-aaaaaa.t");
  assert.equal(decodeKv(kv("{"), Envelope, warn), null);
  assert.equal(decodeKv(kv('{"task_id":1}'), Envelope, warn), null);
  assert.deepEqual(warnings, [
    "warning: skipping /boi/dispatch-queue/s-aaaaaa.t: invalid record: not JSON",
    "warning: skipping /boi/dispatch-queue/s-aaaaaa.t: invalid record: task_id: Invalid input: expected string, received number",
  ]);
});

Deno.test("probeTimeout: what is left of 1.8 s since process start, within 0.5–1 s", () => {
  assert.equal(probeTimeout(300), 1000);
  assert.equal(probeTimeout(1100), 700);
  assert.equal(probeTimeout(1500), 500);
  assert.equal(probeTimeout(5000), 500);
});

Deno.test("decodeKv skips a record filed under another id's key, as the nodes do (SPEC §2): tasks get/list/cancel never show or write a different task", () => {
  const kv = (key: string, value: unknown): IKeyValue => ({
    key: Buffer.from(key),
    value: Buffer.from(JSON.stringify(value)),
    create_revision: "3",
    mod_revision: "5",
    version: "1",
    lease: "0",
  });
  const warnings: string[] = [];
  const warn = (l: string) => warnings.push(l);
  const misfiled = kv("/boi/dispatch-queue/s-aaaaaa.x", envelope());
  assert.equal(decodeKv(misfiled, Envelope, warn), null);
  const node = {
    node_id: "node-b",
    addr: "x:1",
    version: "0",
    started_at: 0,
    pid: 1,
  };
  assert.equal(decodeKv(kv("/boi/nodes/node-a", node), NodeRecord, warn), null);
  assert.equal(
    decodeKv(kv("/boi/nodes/node-b", node), NodeRecord, warn)?.value.node_id,
    "node-b",
  );
  assert.deepEqual(warnings, [
    'warning: skipping /boi/dispatch-queue/s-aaaaaa.x: invalid record: task_id must be "s-aaaaaa.x", the id in its key: got "s-aaaaaa.t"',
    'warning: skipping /boi/nodes/node-a: invalid record: node_id must be "node-a", the id in its key: got "node-b"',
  ]);
});
