/** The `boi` command line: builds the commander program and maps outcomes to exit codes. */
import { Command, CommanderError } from "@commander-js/extra-typings";
import {
  certsOption,
  errorToExit,
  EXIT,
  type Io,
  processIo,
} from "./context.ts";
import { registerDispatch } from "./dispatch.ts";
import { registerNodes } from "./nodes.ts";
import { registerStatus } from "./status.ts";
import { registerTasks } from "./tasks.ts";
import { registerTail } from "./tail.ts";
import { registerLogs } from "./logs.ts";
import { registerCluster } from "./cluster.ts";
import { registerNode } from "./node_cmd.ts";
import { registerPlugin } from "./plugin.ts";
import { registerToken } from "./token.ts";
import { VERSION } from "../node/version.ts";

/** The program with every command registered; `done` receives the exit code. */
export function buildProgram(io: Io, done: (code: number) => void): Command {
  const program = new Command()
    .name("boi")
    .description("dispatch tasks to a boi cluster and watch them run")
    .version(VERSION, "-V, --version", "print the version of boi")
    .exitOverride()
    // Options after a command word are that command's: `plugin test <cmd...>`
    // passes `deno run -q ...` through to the plugin instead of boi parsing it.
    .enablePositionalOptions()
    // Errors are one line (a suggestion would add a second).
    .showSuggestionAfterError(false)
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
    });
  registerDispatch(program, io, done);
  registerStatus(program, io, done);
  registerTasks(program, io, done);
  registerNodes(program, io, done);
  registerTail(program, io, done);
  registerLogs(program, io, done);
  registerCluster(program, io, done);
  registerNode(program, io, done);
  registerPlugin(program, io, done);
  registerToken(program, io, done);
  addCertsOption(program);
  return program;
}

/** Every command that talks to etcd also takes `--certs DIR` (a secure cluster). */
function addCertsOption(cmd: Command): void {
  for (const sub of cmd.commands as Command[]) {
    if (sub.options.some((o) => o.long === "--etcd")) {
      sub.addOption(certsOption());
    }
    addCertsOption(sub);
  }
}

/** Runs the CLI with `args`; returns the exit code (0 ok, 1 failed, 2 usage, 3 etcd unreachable). */
export async function main(
  args: string[],
  io: Io = processIo(),
): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed its one-line error (or the help) already.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const out = errorToExit(err);
    io.err(`${out.message}\n`);
    return out.code;
  }
  return code;
}
