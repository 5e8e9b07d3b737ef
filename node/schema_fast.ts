/**
 * A fast acceptance check derived from a zod schema: every node validates
 * every record of the cluster that its watch delivers (docs/scaling.md), and
 * zod's general machinery costs ~10 µs per task envelope. The zod schema
 * stays the one definition of each record: this only walks its definition
 * once and builds a plain predicate from it.
 *
 * The predicate answers "zod accepts this value and returns an equal one".
 * It may answer false for a value zod accepts (extra keys zod would strip, a
 * construct this walker does not know): the caller then runs zod itself, so
 * zod still gives every error message and every transformed output.
 */
import type { z } from "zod";

/** A predicate over a JSON value. */
export type FastCheck = (v: unknown) => boolean;

// Reading zod 4's public definition objects (`schema._zod.def`).
interface Def {
  type: string;
  checks?: { _zod: { def: CheckDef } }[];
  [k: string]: unknown;
}
interface CheckDef {
  check: string;
  format?: string;
  pattern?: RegExp;
  value?: number;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
}

const defOf = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;

/** The predicate for `schema`, or null when it uses a construct not handled here (zod then always runs). */
export function fastCheck(schema: z.ZodType): FastCheck | null {
  try {
    return build(defOf(schema));
  } catch (e) {
    if (e instanceof Unsupported) return null;
    throw e;
  }
}

class Unsupported extends Error {}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) &&
  // zod writes outputs key by key: a "__proto__" key would not round-trip.
  !Object.hasOwn(v, "__proto__");

function build(def: Def): FastCheck {
  switch (def.type) {
    case "string":
      return withChecks((v) => typeof v === "string", def, stringCheck);
    case "number":
      return withChecks(
        (v) => typeof v === "number" && Number.isFinite(v),
        def,
        numberCheck,
      );
    case "boolean":
      noChecks(def);
      return (v) => typeof v === "boolean";
    case "unknown":
    case "any":
      return () => true;
    case "enum": {
      noChecks(def);
      const values = new Set(
        Object.values(def.entries as Record<string, unknown>),
      );
      return (v) => values.has(v);
    }
    case "nullable": {
      noChecks(def);
      const inner = build(defOf(def.innerType));
      return (v) => v === null || inner(v);
    }
    case "union": {
      noChecks(def);
      const options = (def.options as unknown[]).map((o) => build(defOf(o)));
      return (v) => {
        for (const o of options) if (o(v)) return true;
        return false;
      };
    }
    case "array": {
      const el = build(defOf(def.element));
      return withChecks(
        (v) => Array.isArray(v) && v.every(el),
        def,
        lengthCheck,
      );
    }
    case "record": {
      noChecks(def);
      // Enum or literal keys make zod require every key: not handled here.
      if (defOf(def.keyType).type !== "string") throw new Unsupported("key");
      const key = build(defOf(def.keyType));
      const value = build(defOf(def.valueType));
      return (v) => {
        if (!isPlainObject(v)) return false;
        for (const k in v) if (!key(k) || !value(v[k])) return false;
        return true;
      };
    }
    case "object":
      noChecks(def);
      return objectCheck(def);
    default:
      throw new Unsupported(def.type);
  }
}

function objectCheck(def: Def): FastCheck {
  const shape = def.shape as Record<string, unknown>;
  const fields: [string, FastCheck, boolean][] = Object.entries(shape).map((
    [k, s],
  ) => {
    const d = defOf(s);
    // Optional: absent is fine (JSON has no undefined); present must pass.
    if (d.type === "optional") {
      noChecks(d);
      return [k, build(defOf(d.innerType)), true];
    }
    return [k, build(d), false];
  });
  const catchall = def.catchall === undefined ? null : defOf(def.catchall);
  // Strip mode (zod's default): a key zod would drop makes the output differ.
  const loose = catchall !== null &&
    (catchall.type === "unknown" || catchall.type === "any");
  if (catchall !== null && !loose) throw new Unsupported("catchall");
  const names = fields.map(([k]) => k);
  const checks = fields.map(([, check]) => check);
  const optional = fields.map(([, , o]) => o);
  // A plain read finds a key's value; only for a name Object.prototype also
  // has ("constructor") could it find an inherited one instead.
  const inherited = names.map((k) => k in Object.prototype);
  const n = names.length;
  return (v) => {
    if (!isPlainObject(v)) return false;
    let present = 0;
    for (let i = 0; i < n; i++) {
      const k = names[i];
      // JSON has no undefined: an undefined value is an absent key (an own
      // undefined one fails below, by the key count, and zod decides).
      const x = inherited[i] && !Object.hasOwn(v, k) ? undefined : v[k];
      if (x === undefined) {
        if (optional[i]) continue;
        return false;
      }
      present++;
      if (!checks[i](x)) return false;
    }
    if (loose) return true;
    let keys = 0;
    for (const _ in v) keys++;
    return keys === present;
  };
}

function noChecks(def: Def): void {
  if ((def.checks?.length ?? 0) > 0) throw new Unsupported(`${def.type} check`);
}

function withChecks(
  base: FastCheck,
  def: Def,
  one: (c: CheckDef) => FastCheck,
): FastCheck {
  const checks = (def.checks ?? []).map((c) => one(c._zod.def));
  if (checks.length === 0) return base;
  if (checks.length === 1) {
    const [only] = checks;
    return (v) => base(v) && only(v);
  }
  return (v) => {
    if (!base(v)) return false;
    for (const c of checks) if (!c(v)) return false;
    return true;
  };
}

function stringCheck(c: CheckDef): FastCheck {
  if (c.check === "string_format" && c.format === "regex" && c.pattern) {
    const re = new RegExp(c.pattern.source, c.pattern.flags.replace("g", ""));
    return (v) => re.test(v as string);
  }
  return lengthCheck(c);
}

function lengthCheck(c: CheckDef): FastCheck {
  if (c.check === "min_length") {
    return (v) => (v as { length: number }).length >= c.minimum!;
  }
  if (c.check === "max_length") {
    return (v) => (v as { length: number }).length <= c.maximum!;
  }
  throw new Unsupported(c.check);
}

function numberCheck(c: CheckDef): FastCheck {
  if (c.check === "number_format" && c.format === "safeint") {
    return (v) => Number.isSafeInteger(v);
  }
  if (c.check === "greater_than") {
    const x = c.value!;
    return c.inclusive ? (v) => (v as number) >= x : (v) => (v as number) > x;
  }
  if (c.check === "less_than") {
    const x = c.value!;
    return c.inclusive ? (v) => (v as number) <= x : (v) => (v as number) < x;
  }
  throw new Unsupported(c.check);
}

/**
 * `schema.safeParse(value)`, answered without zod when the fast check
 * accepts (the value is then the output: zod would return an equal copy).
 */
export function fastSafeParse(
  schema: z.ZodType,
  check: FastCheck | null,
  value: unknown,
): { success: true; data: unknown } | ReturnType<z.ZodType["safeParse"]> {
  if (check !== null && check(value)) return { success: true, data: value };
  return schema.safeParse(value);
}
