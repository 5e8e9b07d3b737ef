/**
 * The field readers of the spec parser: each takes a YAML value and its path,
 * returns the typed value or fails with one line naming the path, the rule
 * and the value seen (e.g. `tasks[2].timeout must be a duration …: got "ten"`).
 */
import { parseYaml, YamlError } from "./yaml.ts";
import { SpecError } from "./spec_error.ts";
import { capabilityError } from "./caps.ts";
import { ID_PATTERN } from "./schema.ts";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type Fail = (path: string, reason: string) => never;

export function readYaml(file: string, text: string): unknown {
  try {
    return parseYaml(text);
  } catch (err) {
    if (err instanceof YamlError) {
      throw new SpecError(err.in(file), file, "");
    }
    throw err;
  }
}

export function isMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A short one-line rendering of a value for "got ..." in messages. */
export function describe(v: unknown): string {
  if (v === undefined || v === null) return "nothing";
  if (typeof v === "string") return quote(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return v.length === 0 ? "an empty list" : "a list";
  if (isMap(v)) return "a mapping";
  if (v instanceof Uint8Array) return "binary data";
  return typeof v;
}

export function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

export function fieldPath(path: string, key: string): string {
  const shown = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)
    ? `.${key}`
    : `[${quote(key)}]`;
  return path === "" ? shown.replace(/^\./, "") : `${path}${shown}`;
}

export function checkFields(
  obj: Record<string, unknown>,
  allowed: string[],
  path: string,
  fail: Fail,
): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      fail(
        fieldPath(path, key),
        `is not a known field (allowed: ${allowed.join(", ")})`,
      );
    }
  }
}

export function idField(v: unknown, path: string, fail: Fail): string {
  if (typeof v === "number") {
    fail(
      path,
      `must match ${ID_PATTERN.source}: got the number ${v} (YAML reads unquoted digits as a number: quote the id)`,
    );
  }
  if (typeof v !== "string" || !ID_PATTERN.test(v)) {
    fail(path, `must match ${ID_PATTERN.source}: got ${describe(v)}`);
  }
  return v as string;
}

/** Strict strings: YAML turns `1`, `true` and `0x1f` into non-strings, so say to quote. */
export function stringValue(v: unknown, path: string, fail: Fail): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") {
    fail(path, `must be a string: got ${v} (quote it: "${v}")`);
  }
  return fail(path, `must be a string: got ${describe(v)}`);
}

export function textField(v: unknown, path: string, fail: Fail): string {
  const s = noNul(stringValue(v, path, fail), path, fail);
  if (s.trim() === "") fail(path, "must not be empty");
  return s;
}

export function noNul(s: string, path: string, fail: Fail): string {
  if (s.includes("\0")) fail(path, "must not contain NUL characters");
  return s;
}

export function runField(
  v: unknown,
  path: string,
  fail: Fail,
): string | string[] {
  if (Array.isArray(v)) {
    if (v.length === 0) {
      fail(path, "must be a command string or a non-empty argv list");
    }
    const argv = v.map((a, i) =>
      noNul(stringValue(a, `${path}[${i}]`, fail), `${path}[${i}]`, fail)
    );
    if (argv[0] === "") fail(`${path}[0]`, "must not be empty");
    return argv;
  }
  if (typeof v !== "string") {
    fail(
      path,
      `must be a command string or a non-empty argv list: got ${describe(v)}`,
    );
  }
  return textField(v, path, fail);
}

export function requiresField(
  v: unknown,
  path: string,
  fail: Fail,
): Record<string, string> {
  if (!isMap(v)) {
    fail(
      path,
      `must be a mapping of capabilities like { os: linux }: got ${
        describe(v)
      }`,
    );
  }
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(v as Record<string, unknown>)) {
    const p = fieldPath(path, key);
    const value = stringValue(raw, p, fail);
    const err = capabilityError(key, value);
    if (err !== null) fail(p, `is not a valid capability: ${err}`);
    out[key] = value;
  }
  return out;
}

export function envField(
  v: unknown,
  path: string,
  fail: Fail,
): Record<string, string> {
  if (!isMap(v)) {
    fail(path, `must be a mapping like { CI: "1" }: got ${describe(v)}`);
  }
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(v as Record<string, unknown>)) {
    const p = fieldPath(path, key);
    if (!ENV_NAME.test(key)) {
      fail(
        p,
        `is not a valid environment variable name (letters, digits, _): got ${
          quote(key)
        }`,
      );
    }
    if (key === "__proto__") {
      // zod (the nodes' reader) drops the key: the task would run without it.
      fail(
        p,
        `cannot be stored: a JSON reader treats the name as the object's prototype: got ${
          quote(key)
        }`,
      );
    }
    out[key] = noNul(stringValue(raw, p, fail), p, fail);
  }
  return out;
}

/** An integer field in [min, max]; `max` defaults to the largest exact integer. */
export function intField(
  v: unknown,
  min: number,
  path: string,
  fail: Fail,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    fail(path, `must be an integer >= ${min}: got ${describe(v)}`);
  }
  if ((v as number) > max) {
    fail(path, `must be at most ${max}: got ${describe(v)}`);
  }
  return v as number;
}

export function depsField(
  v: unknown,
  self: string,
  path: string,
  fail: Fail,
): string[] {
  if (!Array.isArray(v)) {
    fail(path, `must be a list of task ids like [compile]: got ${describe(v)}`);
  }
  const deps: string[] = [];
  (v as unknown[]).forEach((d, j) => {
    const id = idField(d, `${path}[${j}]`, fail);
    if (id === self) {
      fail(`${path}[${j}]`, `names the task itself (${JSON.stringify(id)})`);
    }
    if (deps.includes(id)) {
      fail(`${path}[${j}]`, `names ${JSON.stringify(id)} twice`);
    }
    deps.push(id);
  });
  return deps;
}

export function listIds(ids: string[]): string {
  return ids.length <= 10
    ? ids.join(", ")
    : `${ids.slice(0, 10).join(", ")}, … ${ids.length - 10} more`;
}

/** The first dependency cycle in task order, as ids with the start repeated at the end. */
export function findCycle(
  deps: string[][],
  index: Map<string, number>,
): string[] | null {
  const ids = [...index.keys()];
  const WHITE = 0, GREY = 1, BLACK = 2;
  const color = new Array<number>(deps.length).fill(WHITE);
  for (let root = 0; root < deps.length; root++) {
    if (color[root] !== WHITE) continue;
    const stack: [number, number][] = [[root, 0]];
    color[root] = GREY;
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const [node, edge] = top;
      if (edge >= deps[node].length) {
        color[node] = BLACK;
        stack.pop();
        continue;
      }
      top[1]++;
      const next = index.get(deps[node][edge])!;
      if (color[next] === GREY) {
        const from = stack.findIndex(([n]) => n === next);
        return [...stack.slice(from).map(([n]) => ids[n]), ids[next]];
      }
      if (color[next] === WHITE) {
        color[next] = GREY;
        stack.push([next, 0]);
      }
    }
  }
  return null;
}
