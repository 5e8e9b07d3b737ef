/** The mock's provisioner and call record, which the end-to-end suites lean on. */
import assert from "node:assert/strict";
import { PluginSupervisor } from "../node/plugins/supervisor.ts";
import { GrpcProvisioner } from "../node/exec/grpc_provisioner.ts";
import { pluginArgv, POOL_ENV, tempDir } from "./test_util.ts";
import { waitFor } from "../tests/harness/wait.ts";
import { processGroupAlive } from "../tests/harness/process.ts";

Deno.test("mock provisioner: Allocate starts the command with the token, Deallocate stops it; calls are recorded", async () => {
  const dir = await tempDir("boi-mock-");
  const sup = new PluginSupervisor({
    plugin: {
      name: "prov",
      kind: "provisioner",
      argv: pluginArgv("mock.ts", ["--allow-run", POOL_ENV]),
      env: {
        BOI_MOCK_RECORD: `${dir}/calls.jsonl`,
        BOI_MOCK_PROVISION_ARGV: JSON.stringify([
          "sh",
          "-c",
          `echo "$BOI_JOIN_TOKEN $BOI_CAPS" > ${dir}/joined; echo $$ > ${dir}/pid; exec sleep 30`,
        ]),
      },
    },
    node_id: "n1",
    data_dir: dir,
    ready_timeout_ms: 5000,
    log: { log() {} },
  });
  try {
    assert.equal((await sup.start()).state, "ready");
    const prov = new GrpcProvisioner({ connection: () => sup.connection() });
    const req = {
      request_id: "r1",
      hint: { gpu: "1" },
      join_token: "tok-123",
      bootstrap_url: "https://localhost:7001",
      deadline_ms: 60_000,
    };
    const { allocation_id } = await prov.allocate(req);
    assert.equal(allocation_id, "mock-r1");
    assert.deepEqual(await prov.allocate(req), { allocation_id }, "idempotent");
    const joined = await waitFor(
      "the allocated node started",
      () => Deno.readTextFile(`${dir}/joined`).catch(() => null),
    );
    assert.equal(joined, "tok-123 gpu=1\n");
    const pid = Number(
      await waitFor(
        "its pid",
        () => Deno.readTextFile(`${dir}/pid`).catch(() => null),
      ),
    );
    await prov.deallocate({ allocation_id });
    assert.equal(await processGroupAlive(pid), false);
    const calls = (await Deno.readTextFile(`${dir}/calls.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(
      calls.map((c) => c.rpc).filter((r) => r !== "Health"),
      ["Handshake", "Allocate", "Allocate", "Deallocate"],
    );
    assert.ok(calls.every((c) => typeof c.corr_id === "string" && c.corr_id));
  } finally {
    await sup.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
