/** Reading a spec file for `dispatch`: bounded, UTF-8, one-line errors. */
import { MAX_SPEC_BYTES } from "../node/spec.ts";
import { CliError } from "./context.ts";

/** Reads at most MAX_SPEC_BYTES + 1 bytes (pipes and devices included) as UTF-8. */
export async function readSpecFile(path: string): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    throw new CliError(`${path}: cannot read: ${osReason(err)}`);
  }
  const buf = new Uint8Array(MAX_SPEC_BYTES + 1);
  let n = 0;
  try {
    while (n < buf.length) {
      const got = await file.read(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
  } catch (err) {
    throw new CliError(`${path}: cannot read: ${osReason(err)}`);
  } finally {
    file.close();
  }
  if (n > MAX_SPEC_BYTES) {
    throw new CliError(
      `${path}: is too large: more than ${MAX_SPEC_BYTES} bytes`,
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(
      buf.subarray(0, n),
    );
  } catch {
    throw new CliError(`${path}: cannot read: not UTF-8 text`);
  }
}

function osReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // "No such file or directory (os error 2): open '/x'" -> keep the cause.
  return msg.split("\n")[0].replace(/: \w+ '.*'$/, "");
}
