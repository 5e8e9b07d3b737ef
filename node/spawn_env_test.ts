import assert from "node:assert/strict";
import { spawnEnv } from "./spawn_env.ts";

Deno.test("spawnEnv: workspace < spec env < task env < BOI_* variables", () => {
  const env = spawnEnv(
    { WS: "ws", A: "ws", BOI_TASK_ID: "ws" },
    { spec_id: "s", env: { A: "spec", B: "spec", BOI_TASK_ID: "spec" } },
    { spec_id: "s", env: { B: "task", BOI_TASK_ID: "task" } },
    { BOI_TASK_ID: "s.t" },
  );
  assert.deepEqual(env, { WS: "ws", A: "spec", B: "task", BOI_TASK_ID: "s.t" });
});

Deno.test("spawnEnv: a spec record from before it had env, and an unknown spec", () => {
  assert.deepEqual(
    spawnEnv({}, { spec_id: "s" }, { spec_id: "s", env: { A: "1" } }, {}),
    { A: "1" },
  );
  assert.throws(
    () => spawnEnv({}, undefined, { spec_id: "s", env: {} }, {}),
    /spec record s is not known here/,
  );
  assert.throws(
    () =>
      spawnEnv({}, { spec_id: "o", env: {} }, { spec_id: "s", env: {} }, {}),
    /spec record s/,
  );
});
