/**
 * Capability keys and values (SPEC §2). Pure: used by the node at start-up
 * (`BOI_CAPS`) and by the spec parser for `requires`.
 */

/** Keys with a fixed meaning; every other key must be a user key `x-<vendor>-<tag>`. */
export const RESERVED_CAPS = [
  "os",
  "arch",
  "region",
  "runtime",
  "cluster_admin",
] as const;
export type ReservedCap = typeof RESERVED_CAPS[number];

/**
 * User capability keys: `x-<vendor>-<tag>`, vendor letters and digits, tag
 * letters, digits and dashes (not starting with a dash); case-insensitive.
 */
export const USER_CAP_PATTERN = /^x-[a-z0-9]+-[a-z0-9][a-z0-9-]*$/i;

/** Values are UTF-8 strings of at most this many bytes. */
export const MAX_CAP_VALUE_BYTES = 256;

/** Allowed values of the reserved keys that have a closed set. */
export const CAP_VALUES: Readonly<Record<string, readonly string[]>> = {
  os: ["linux", "darwin", "windows"],
  arch: ["x86_64", "arm64"],
  cluster_admin: ["true", "false"],
};

const encoder = new TextEncoder();

/** Why `key=value` is not a valid capability, or null when it is. */
export function capabilityError(key: string, value: string): string | null {
  const reserved = (RESERVED_CAPS as readonly string[]).includes(key);
  if (!reserved && !USER_CAP_PATTERN.test(key)) {
    return `capability key must be one of ${
      RESERVED_CAPS.join(", ")
    } or match x-<vendor>-<tag>: got ${JSON.stringify(key)}`;
  }
  if (typeof value !== "string") {
    return `capability ${key} must have a string value: got ${typeof value}`;
  }
  if (value === "") {
    return `capability ${key} must not be empty`;
  }
  const bytes = encoder.encode(value).length;
  if (bytes > MAX_CAP_VALUE_BYTES) {
    return `capability ${key} must be at most ${MAX_CAP_VALUE_BYTES} bytes of UTF-8: got ${bytes} bytes`;
  }
  const allowed = CAP_VALUES[key];
  if (allowed && !allowed.includes(value)) {
    return `capability ${key} must be one of ${allowed.join(", ")}: got ${
      JSON.stringify(value)
    }`;
  }
  return null;
}

/**
 * Parses `BOI_CAPS` ("k=v,k2=v2"); `where` names the source in errors.
 * Blank entries are ignored; `cluster_admin` can never be declared here.
 */
export function parseCapsList(
  text: string,
  where: string,
): Record<string, string> {
  const caps: Record<string, string> = {};
  for (const raw of text.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) {
      throw new Error(
        `${where}: capability must look like key=value: got ${
          JSON.stringify(item)
        }`,
      );
    }
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === "cluster_admin") {
      throw new Error(
        `${where}: cluster_admin is never self-declared: it is granted by "cluster init" or "cluster admin grant"`,
      );
    }
    const err = capabilityError(key, value);
    if (err !== null) throw new Error(`${where}: ${err}`);
    if (Object.hasOwn(caps, key)) {
      throw new Error(
        `${where}: capability ${key} is given twice: got ${
          JSON.stringify(caps[key])
        } and ${JSON.stringify(value)}`,
      );
    }
    caps[key] = value;
  }
  return caps;
}
