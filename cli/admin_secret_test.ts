import assert from "node:assert/strict";
import { localAdminSecret } from "./admin_secret.ts";
import type { Io } from "./context.ts";
import { newAdminSecret } from "../node/admin_secret.ts";

function io(env: Record<string, string>): Io {
  return {
    out() {},
    err() {},
    columns: () => 80,
    env: (k: string) => env[k],
    now: () => 0,
  } as unknown as Io;
}

Deno.test("localAdminSecret: the node's 0600 copy in $BOI_DATA_DIR, nothing when absent or damaged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "boi-secret-" });
  try {
    assert.equal(await localAdminSecret(io({ BOI_DATA_DIR: dir })), null);
    await Deno.writeTextFile(`${dir}/admin_secret`, "not a secret\n");
    assert.equal(await localAdminSecret(io({ BOI_DATA_DIR: dir })), null);
    const s = newAdminSecret();
    await Deno.writeTextFile(`${dir}/admin_secret`, `${s}\n`);
    assert.equal(await localAdminSecret(io({ BOI_DATA_DIR: dir })), s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
