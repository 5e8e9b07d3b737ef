/**
 * The one YAML reader and writer: spec files, `boi.yaml`, plugins files and
 * the tests' fixtures. js-yaml with its default YAML 1.2 core schema (no
 * timestamps, no `!!binary`, no merge keys; duplicate keys refused). It
 * replaced the `yaml` package because it reads a 5,000-task spec (159 KB) in
 * 17–90 ms against 340–520 ms, the dispatching CLI's largest cost in the
 * control-plane bench (issue 16).
 * @module
 */
import { dump, loadAll, YAMLException } from "js-yaml";
import { printable } from "./printable.ts";

/** Alias nodes (`*name`) one document may hold. */
export const MAX_ALIASES = 100;
/** Collections nested deeper are refused (js-yaml's own default). */
export const MAX_DEPTH = 100;

/** A text that is not one YAML document; `line` and `col` are 1-based, null when unknown. */
export class YamlError extends Error {
  constructor(
    readonly reason: string,
    readonly line: number | null,
    readonly col: number | null,
  ) {
    super(line === null ? reason : `${line}:${col}: ${reason}`);
    this.name = "YamlError";
  }

  /** `file:line:col: invalid YAML: reason`, the one line every reader prints. */
  in(file: string): string {
    const at = this.line === null ? "" : `:${this.line}:${this.col}`;
    return `${file}${at}: invalid YAML: ${this.reason}`;
  }
}

/**
 * Reads one YAML document: undefined for a text of only blanks and comments.
 * Shared aliases are no way around a size check: a value tree with more than
 * two values per byte of text (plus 1,024) is refused, as only aliases could
 * expand it that far (ten of ten nested make 10^10 values).
 */
export function parseYaml(text: string): unknown {
  let docs: unknown[];
  try {
    docs = loadAll(text, { maxAliases: MAX_ALIASES, maxDepth: MAX_DEPTH });
  } catch (err) {
    throw toYamlError(err);
  }
  if (docs.length > 1) {
    const [line, col] = secondDocument(text);
    throw new YamlError(
      "a file holds one YAML document: found a second one",
      line,
      col,
    );
  }
  const doc = docs[0];
  const limit = 2 * text.length + 1024;
  if (countValues(doc, limit) > limit) {
    throw new YamlError(
      `its aliases expand it to more than ${limit} values`,
      null,
      null,
    );
  }
  return doc;
}

/** Writes `value` as block-style YAML. */
export function stringifyYaml(value: unknown): string {
  return dump(value);
}

function toYamlError(err: unknown): YamlError {
  if (err instanceof YAMLException) {
    const mark = err.mark;
    const reason = firstPrintable(err.reason);
    return mark === undefined || mark === null
      ? new YamlError(reason, null, null)
      : new YamlError(reason, mark.line + 1, mark.column + 1);
  }
  // "All exceptions MUST be caught" (js-yaml's README): a RangeError from a
  // pathological input is still a file that cannot be read.
  const msg = err instanceof Error ? err.message : String(err);
  return new YamlError(firstPrintable(msg), null, null);
}

/** The first line, escaped: reasons quote the input (`unidentified alias "…"`). */
function firstPrintable(text: string): string {
  return printable(text.split("\n")[0].trim());
}

/**
 * Values in `v`, aliases expanded; stops past `limit`. Children are counted
 * as they are pushed, so a self-referencing collection (js-yaml builds one
 * for `&a [x, …, *a]`) cannot grow the stack beyond `limit` first.
 */
function countValues(v: unknown, limit: number): number {
  let n = 1;
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x !== "object" || x === null) continue;
    const kids = Array.isArray(x) ? x : Object.values(x);
    n += kids.length;
    if (n > limit) return n;
    for (const y of kids) stack.push(y);
  }
  return n;
}

/**
 * The line where the second document starts, for the message: a `---` line,
 * or the first line after a `...` that holds more than a comment; the first
 * such line through which the text reads as two documents. Only called on
 * that error, so the prefixes' parses cost nothing the common path pays.
 */
function secondDocument(text: string): [number, number] | [null, null] {
  const lines = text.split(/\r\n|\r|\n/);
  let afterEnd = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const start = /^---(\s|$)/.test(line);
    const content = afterEnd && !/^\s*(#.*)?$/.test(line);
    if (/^\.\.\.(\s|$)/.test(line)) afterEnd = true;
    else if (start || content) afterEnd = false;
    if (!start && !content) continue;
    try {
      if (loadAll(lines.slice(0, i + 1).join("\n")).length > 1) {
        return [i + 1, 1];
      }
    } catch {
      // a prefix cut inside a collection: not the place yet
    }
  }
  return [null, null];
}
