/**
 * `token mint [--caps k=v,...] [--ttl 300s] [--node H:P]` (SPEC §11): asks that
 * node to mint; it refuses unless a direct etcd read says it is
 * `cluster_admin`. Only the token goes to stdout.
 */
import { parseDuration } from "../node/spec.ts";
import {
  type Command,
  InvalidArgumentError,
  Option,
} from "@commander-js/extra-typings";
import { parseCapsList } from "../node/caps.ts";
import { MAX_TOKEN_TTL_S } from "../node/identity/records.ts";
import {
  CliError,
  type CommonOptions,
  commonOptions,
  Ctx,
  EXIT,
  type Io,
} from "./context.ts";
import { nodeAddr, nodeOption } from "./local_node.ts";
import { postNode } from "./node_http.ts";

/** `--ttl`: a duration of whole seconds the node will mint (2 s to a day), checked before any node is asked. */
function parseTtl(v: string): number {
  const ms = parseDuration(v);
  if (
    ms === null || ms % 1000 !== 0 || ms < 2000 ||
    ms > MAX_TOKEN_TTL_S * 1000
  ) {
    throw new InvalidArgumentError(
      `must be whole seconds from 2s to ${MAX_TOKEN_TTL_S}s (24h): got ${
        JSON.stringify(v)
      }`,
    );
  }
  return ms;
}

/** Runs `token mint`. */
export async function runMint(
  io: Io,
  opts: CommonOptions & { caps?: string; ttl?: number; node?: string },
): Promise<number> {
  const ctx = new Ctx(io, opts);
  let caps: Record<string, string>;
  try {
    caps = parseCapsList(opts.caps ?? "", "--caps");
  } catch (e) {
    throw new CliError((e as Error).message, EXIT.usage);
  }
  const ttlMs = opts.ttl ?? 300_000;
  const doc = await postNode(ctx, nodeAddr(io, opts.node), "/internal/tokens", {
    caps,
    ttl_s: ttlMs / 1000,
  });
  if (ctx.json) ctx.printJson(doc);
  else ctx.print(String(doc.token));
  return EXIT.ok;
}

/** Registers `token mint`. */
export function registerToken(
  program: Command,
  io: Io,
  done: (code: number) => void,
): void {
  const token = program.command("token").description("single-use join tokens");
  const [etcd, prefix, json] = commonOptions();
  token.command("mint")
    .description("ask an admin node for a join token (printed alone on stdout)")
    .addOption(
      new Option("--caps <list>", "k=v,... caps the joining node must declare"),
    )
    .addOption(
      new Option("--ttl <duration>", "token lifetime (default 300s)").argParser(
        parseTtl,
      ),
    )
    .addOption(nodeOption())
    .addOption(etcd).addOption(prefix).addOption(json)
    .action(async (opts) => done(await runMint(io, opts)));
}
