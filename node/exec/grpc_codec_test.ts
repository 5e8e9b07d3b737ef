/**
 * The generated codecs against an independent reading of the same `.proto`
 * files (protobufjs reflection, as the 1.0 SDK and core used): every RPC's
 * messages cross in both directions with the same field numbers, so a plugin
 * or core from before the generated code still understands these bytes. And
 * a malformed message is a WireError naming its field.
 */
import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { CODECS, COMMON_CODECS, WireError } from "./grpc_codec.ts";
import { PREPARE_WIRE } from "./spec_cache_wire.ts";
import type { SpawnRequest, WorkerEvent } from "./contracts.ts";

const protoDir = new URL("../../proto/", import.meta.url).pathname;
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => protoDir + target;
await root.load(
  ["workspace", "pool", "router", "provisioner", "hooks"].map((k) =>
    `boi/${k}/v1/${k}.proto`
  ),
  { keepCase: true },
);
const T = (name: string) => root.lookupType(name);
/** What a protobufjs-reflection peer reads from `bytes` (longs as numbers, absent oneof members left out). */
const read = (name: string, bytes: Uint8Array) =>
  T(name).toObject(T(name).decode(bytes), {
    longs: Number,
    defaults: false,
    oneofs: false,
  });
const write = (name: string, obj: Record<string, unknown>) =>
  T(name).encode(T(name).fromObject(obj)).finish();

Deno.test("codecs: Spawn's request and events are the .proto's field numbers both ways", () => {
  const c = CODECS.pool.spawn;
  const req: SpawnRequest = {
    task_id: "s.t",
    claim_token: "7",
    workdir: "/w",
    argv: ["echo", "hi"],
    shell: null,
    prompt: "p",
    env: { A: "1" },
    timeout_ms: 2 ** 40,
  };
  assert.deepEqual(read("boi.pool.v1.SpawnRequest", c.encodeRequest(req)), {
    task_id: "s.t",
    claim_token: "7",
    workdir: "/w",
    argv: { args: ["echo", "hi"] },
    prompt: "p",
    env: { A: "1" },
    timeout_ms: 2 ** 40,
  });
  const shell = write("boi.pool.v1.SpawnRequest", {
    task_id: "s.u",
    shell: "exit 3",
  });
  assert.deepEqual(c.decodeRequest(shell), {
    task_id: "s.u",
    claim_token: "",
    workdir: "",
    argv: null,
    shell: "exit 3",
    prompt: null,
    env: {},
    timeout_ms: null,
  });
  const events: WorkerEvent[] = [
    { started: { pid: 4242 } },
    { stdout: new TextEncoder().encode("out") },
    { stderr: new TextEncoder().encode("err") },
    { exit: { code: 0, signal: null, error: null } },
    { exit: { code: null, signal: "SIGKILL", error: "timeout after 5ms" } },
  ];
  for (const ev of events) {
    const bytes = c.encodeResponse(ev);
    const back = c.decodeResponse(
      write("boi.pool.v1.WorkerEvent", read("boi.pool.v1.WorkerEvent", bytes)),
    );
    assert.deepEqual(back, ev);
  }
  // Exit code 0 is set, not absent: a peer tells it from a signal's end.
  assert.deepEqual(
    read(
      "boi.pool.v1.WorkerEvent",
      c.encodeResponse({ exit: { code: 0, signal: null, error: null } }),
    ),
    { exit: { code: 0 } },
  );
});

Deno.test("codecs: Prepare with and without the spec cache fields (5, 6); the other RPCs", () => {
  const full = {
    spec_id: "s",
    task_id: "s.t",
    spec_yaml: "name: s\n",
    hints: { zone: "a" },
  };
  const plain = CODECS.workspace.prepare.encodeRequest(full);
  assert.deepEqual(read("boi.workspace.v1.PrepareRequest", plain), full);
  assert.deepEqual(CODECS.workspace.prepare.decodeRequest(plain), full);
  const cached = {
    ...full,
    spec_yaml: "",
    spec_digest: "ab",
    spec_yaml_cached: true,
  };
  const w = read(
    "boi.workspace.v1.PrepareRequest",
    PREPARE_WIRE.encodeRequest(cached),
  );
  assert.deepEqual(w, {
    spec_id: "s",
    task_id: "s.t",
    hints: { zone: "a" },
    spec_digest: "ab",
    spec_yaml_cached: true,
  });
  assert.deepEqual(
    PREPARE_WIRE.decodeRequest(write("boi.workspace.v1.PrepareRequest", w)),
    cached,
  );

  const route = {
    task_id: "s.t",
    requires: { gpu: "1" },
    candidates: [{ node_id: "n1", caps: { gpu: "1" } }],
  };
  assert.deepEqual(
    read(
      "boi.router.v1.RouteRequest",
      CODECS.router.route.encodeRequest(route),
    ),
    route,
  );
  const hs = {
    core_version: "1.2.3",
    proto_major: 1,
    proto_minor: 1,
    capabilities: ["mux"],
  };
  assert.deepEqual(
    COMMON_CODECS.handshake.decodeRequest(
      write("boi.common.v1.HandshakeRequest", hs),
    ),
    hs,
  );
  const ev = {
    seq: 9,
    emitter_node_id: "n1",
    kind: "task.completed",
    ts: 1_700_000_000_000,
    payload_json: "{}",
    dedup_key: "k",
    tier: "audit" as const,
  };
  assert.deepEqual(
    read("boi.hooks.v1.OnEventRequest", CODECS.hooks.onEvent.encodeRequest(ev)),
    ev,
  );
  // A 1.0 peer may leave the tier out: the default.
  assert.equal(
    CODECS.hooks.onEvent.decodeRequest(
      write("boi.hooks.v1.OnEventRequest", { seq: 1 }),
    ).tier,
    "best_effort",
  );
  const alloc = {
    request_id: "r",
    hint: {},
    join_token: "j",
    bootstrap_url: "u",
    deadline_ms: 5000,
  };
  assert.deepEqual(
    CODECS.provisioner.allocate.decodeRequest(
      write("boi.provisioner.v1.AllocateRequest", alloc),
    ),
    alloc,
  );
  // The empty responses of the contracts that answer nothing.
  assert.equal(CODECS.workspace.cleanup.encodeResponse(undefined).length, 0);
  assert.equal(CODECS.pool.kill.decodeResponse(new Uint8Array(0)), undefined);
});

Deno.test("codecs: a malformed message is a WireError that names the field", () => {
  const wire = (f: () => unknown, re: RegExp) =>
    assert.throws(
      f,
      (e: unknown) => e instanceof WireError && re.test(e.message),
    );
  // task_id (field 2) declares 40 bytes and carries 2.
  wire(
    () =>
      CODECS.workspace.prepare.decodeRequest(
        Uint8Array.of(0x12, 40, 0x61, 0x62),
      ),
    /PrepareRequest\.task_id: 40 bytes declared, 2 left/,
  );
  // argv (4) holds args (1) that runs past argv's end.
  wire(
    () => CODECS.pool.spawn.decodeRequest(Uint8Array.of(0x22, 2, 0x0a, 9)),
    /SpawnRequest\.argv\.args: 9 bytes declared, 0 left/,
  );
  // Started.pid: a varint cut short.
  wire(
    () => CODECS.pool.spawn.decodeResponse(Uint8Array.of(0x0a, 1, 0x08)),
    /WorkerEvent\.started\.pid|WorkerEvent\.started: /,
  );
  wire(
    () => CODECS.pool.spawn.decodeResponse(new Uint8Array(0)),
    /WorkerEvent: no event set/,
  );
  wire(
    () =>
      CODECS.hooks.onEvent.decodeRequest(
        write("boi.hooks.v1.OnEventRequest", { seq: 1, tier: "urgent" }),
      ),
    /OnEventRequest\.tier: expected one of best_effort, audit: got "urgent"/,
  );
});
