/**
 * Path checks for plugins that build paths from ids core sends: an id is one
 * path segment, and a path core hands back must stay under the plugin's root.
 * @module
 */
import { PluginError } from "./errors.ts";

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Throws INVALID_ARGUMENT unless `value` is a safe single path segment (no `/`, no `..`). */
export function pathSegment(field: string, value: string): string {
  if (!SEGMENT.test(value) || value.includes("..")) {
    throw new PluginError(
      "INVALID_ARGUMENT",
      `${field} is not a safe path segment: ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** `p` made absolute against the working directory, without `.` or `..` segments. */
export function absolutePath(p: string): string {
  const full = p.startsWith("/") ? p : `${Deno.cwd()}/${p}`;
  const out: string[] = [];
  for (const seg of full.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return "/" + out.join("/");
}

/** Throws INVALID_ARGUMENT unless `path` lies strictly inside `root` (both absolute). */
export function insideRoot(root: string, path: string): string {
  const abs = absolutePath(path);
  if (!abs.startsWith(root.endsWith("/") ? root : root + "/")) {
    throw new PluginError(
      "INVALID_ARGUMENT",
      `${JSON.stringify(path)} is not under this plugin's root ${root}`,
    );
  }
  return abs;
}
