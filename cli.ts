/**
 * Entry point of the boi CLI (SPEC §11): `deno run -P=cli cli.ts <command>`
 * or `deno task cli <command>`. Exits explicitly so no open handle delays it.
 *
 * `dispatch` must refuse at once when etcd is unreachable (SPEC §6), so its
 * etcd probe starts here, in a worker thread, before the rest of the CLI (and
 * the etcd client library, most of the start-up time) is loaded.
 */
import { startEarlyProbe } from "./cli/early_probe.ts";

if (import.meta.main) {
  startEarlyProbe(Deno.args, (name) => Deno.env.get(name));
  const { main } = await import("./cli/main.ts");
  Deno.exit(await main(Deno.args));
}
