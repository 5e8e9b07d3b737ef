/**
 * Refuses, at node start, a plugin command whose executable does not exist
 * (or whose socket path cannot exist): a typo in the plugins file is an
 * operator's one-line error (exit 2), not a plugin that crash-loops into
 * `unstable` behind a node that looks alive.
 * @module
 */
import type { PluginConfig } from "./config.ts";
import { MAX_SOCKET_PATH } from "./supervisor_types.ts";

/** Whether `path` is a file someone may execute. */
async function executable(path: string): Promise<"ok" | "missing" | "mode"> {
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) return "mode";
    // mode is null where the platform has none: assume executable.
    return st.mode === null || (st.mode & 0o111) !== 0 ? "ok" : "mode";
  } catch {
    return "missing";
  }
}

/**
 * Checks argv[0] of every plugin core spawns (attached ones have none): a
 * path must be an executable file, a bare name must be found on the PATH the
 * plugin gets. Throws one line naming the file, field and value.
 */
export async function checkPluginCommands(
  configs: readonly PluginConfig[],
  file: string | null,
  data_dir?: string,
): Promise<void> {
  const where = file ?? "plugins";
  for (const c of configs) {
    if (data_dir !== undefined && c.spec.socket === undefined) {
      const dir = data_dir.startsWith("/")
        ? data_dir
        : `${Deno.cwd()}/${data_dir}`;
      const socket = `${dir}/plugins/${c.spec.name}.sock`;
      if (new TextEncoder().encode(socket).length > MAX_SOCKET_PATH) {
        throw new Error(
          `${where}: ${c.spec.kind}: its socket ${
            JSON.stringify(socket)
          } is longer than ${MAX_SOCKET_PATH} bytes: use a shorter BOI_DATA_DIR or plugin name`,
        );
      }
    }
    const exe = c.spec.argv[0];
    // Placeholders are filled per incarnation: nothing to check yet.
    if (exe === undefined || exe.includes("{")) continue;
    const field = `${where}: ${c.spec.kind}.argv[0]`;
    if (exe.includes("/")) {
      const base = c.spec.cwd ?? Deno.cwd();
      const path = exe.startsWith("/") ? exe : `${base}/${exe}`;
      const r = await executable(path);
      if (r === "missing") {
        throw new Error(
          `${field}: no such executable: ${JSON.stringify(path)}`,
        );
      }
      if (r === "mode") {
        throw new Error(
          `${field}: not an executable file: ${JSON.stringify(path)}`,
        );
      }
      continue;
    }
    const PATH = c.spec.env?.PATH ?? Deno.env.get("PATH") ?? "";
    let found = false;
    for (const dir of PATH.split(":")) {
      if (dir !== "" && await executable(`${dir}/${exe}`) === "ok") {
        found = true;
        break;
      }
    }
    if (!found) {
      throw new Error(
        `${field}: no executable ${JSON.stringify(exe)} on PATH (${
          JSON.stringify(PATH.slice(0, 120))
        })`,
      );
    }
  }
}
