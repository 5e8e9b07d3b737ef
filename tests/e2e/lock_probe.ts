/**
 * Test-only probe for the permission lock (permission_lock_test.ts): run in
 * place of node/main.ts or a plugin script, under exactly the flags those
 * get, it tries each operation named in its arguments and prints one JSON
 * line per try: `{op, target, ok, error}`. Never part of a production path.
 *
 * Arguments: `read:<path>`, `write:<path>`, `connect:<host>:<port>`, `run:<cmd>`.
 * @module
 */

async function attempt(op: string, target: string): Promise<void> {
  if (op === "read") await Deno.readTextFile(target);
  else if (op === "write") await Deno.writeTextFile(target, "probe\n");
  else if (op === "connect") {
    const at = target.lastIndexOf(":");
    const conn = await Deno.connect({
      hostname: target.slice(0, at),
      port: Number(target.slice(at + 1)),
    });
    conn.close();
  } else if (op === "run") {
    await new Deno.Command(target, { stdout: "null", stderr: "null" }).output();
  } else throw new Error(`unknown op ${op}`);
}

for (const arg of Deno.args) {
  const at = arg.indexOf(":");
  const op = arg.slice(0, at);
  const target = arg.slice(at + 1);
  try {
    await attempt(op, target);
    console.log(JSON.stringify({ op, target, ok: true, error: null }));
  } catch (e) {
    const err = e as Error;
    console.log(
      JSON.stringify({
        op,
        target,
        ok: false,
        error: `${err.name}: ${err.message}`,
      }),
    );
  }
}
