/** Fixtures shared by the CLI unit tests. */
import type { Envelope } from "../node/schema.ts";
import type { Io } from "./context.ts";
import { main } from "./main.ts";
import { testEnvelope } from "../node/test_envelope.ts";

/** A PENDING envelope with overrides, for tests. */
export function envelope(over: Partial<Envelope> = {}): Envelope {
  return testEnvelope("s-aaaaaa.t", over);
}

/** Runs the CLI in-process with captured output and a fixed environment. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: Io = {
    out: (t) => out += t,
    err: (t) => err += t,
    isTty: false,
    columns: () => 0,
    env: (name) => env[name],
    now: () => 0,
  };
  const code = await main(args, io);
  return { code, out, err };
}
