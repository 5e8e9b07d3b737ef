/**
 * Entry point of the boi CLI (SPEC §11): `deno run -P=cli cli.ts <command>`
 * or `deno task cli <command>`. Exits explicitly so no open handle delays it.
 */
import { main } from "./cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
