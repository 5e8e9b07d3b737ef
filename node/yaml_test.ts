import assert from "node:assert/strict";
import { MAX_ALIASES, parseYaml, stringifyYaml, YamlError } from "./yaml.ts";

function refused(text: string, includes: string): YamlError {
  try {
    parseYaml(text);
  } catch (e) {
    assert.ok(e instanceof YamlError, String(e));
    assert.ok(e.message.includes(includes), `${e.message} lacks ${includes}`);
    return e;
  }
  throw new assert.AssertionError({ message: `not refused: ${text}` });
}

Deno.test("yaml: blanks and comments read as nothing; the core schema's scalars", () => {
  assert.deepEqual(parseYaml(""), undefined);
  assert.deepEqual(parseYaml("# only a comment\n\n"), undefined);
  assert.deepEqual(
    parseYaml("a: 2001-12-14\nb: yes\nc: 0x1F\nd: ~\ne: '1'\nf: 1_000\n"),
    { a: "2001-12-14", b: "yes", c: 31, d: null, e: "1", f: "1_000" },
  );
});

Deno.test("yaml: errors carry the 1-based line and column", () => {
  const e = refused("a: 1\na: 2\n", "duplicated mapping key");
  assert.deepEqual([e.line, e.col], [2, 1]);
  assert.deepEqual(
    e.in("f.yaml"),
    "f.yaml:2:1: invalid YAML: duplicated mapping key",
  );
  refused("a: !!binary aGVsbG8=\n", "1:4: unknown scalar tag");
  refused("? [a]\n: 1\n", "complex keys");
});

Deno.test("yaml: a second document is refused at its marker", () => {
  assert.deepEqual([refused("a: 1\n---\nb: 2\n", "second one").line], [2]);
  assert.deepEqual(refused("---\na: 1\n...\n---\nb: 2\n", "second").line, 4);
  assert.deepEqual(refused("a: 1\n---\n", "second").line, 2);
  assert.deepEqual(refused("a: 1\n...\nb: 2\n", "second").line, 3);
  assert.deepEqual(refused("a: 1\n...\n# c\n\nb: 2\n", "second").line, 5);
  assert.deepEqual(refused("a: 1\n---\n---\nb: 2\n", "second").line, 2);
  assert.deepEqual(refused("a: [1,\n 2]\n---\nb: 2\n", "second").line, 3);
  assert.deepEqual(refused("a: 1\r---\rb: 2\r", "second").line, 2);
});

Deno.test("yaml: aliases cannot expand a small file into a huge tree", () => {
  // Nine levels of nine aliases: 81 alias nodes, 9^9 values once expanded.
  let text = "l0: &l0 [x, x, x, x, x, x, x, x, x]\n";
  for (let i = 1; i < 10; i++) {
    text += `l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(", ")}]\n`;
  }
  refused(text, "aliases expand it to more than");
  // A collection that holds itself (js-yaml builds the cycle): refused at
  // once, neither the stack nor the time grows with the expansion.
  const t0 = performance.now();
  refused(`a: &a [${"x, ".repeat(12_000)}*a]\n`, "aliases expand it");
  const keys = Array.from({ length: 5000 }, (_, i) => `k${i}: x`).join(", ");
  refused(`a: &a {${keys}, z: *a}\n`, "aliases expand it");
  assert.ok(performance.now() - t0 < 2000, "a cycle took seconds to refuse");
  // A few honest reuses are fine.
  assert.deepEqual(parseYaml("r: &r {os: linux}\na: *r\nb: *r\n"), {
    r: { os: "linux" },
    a: { os: "linux" },
    b: { os: "linux" },
  });
  const many = Array.from({ length: MAX_ALIASES + 1 }, (_, i) => `k${i}: *r`);
  refused(`r: &r 1\n${many.join("\n")}\n`, "maxAliases");
});

Deno.test("yaml: deep nesting and control characters stay one printable line", () => {
  refused("[".repeat(500) + "]".repeat(500), "maxDepth");
  const e = refused("a: *x\u0001\u001b\n", "unidentified alias");
  // deno-lint-ignore no-control-regex -- control characters are the point
  assert.ok(!/[\x00-\x1f\x7f]/.test(e.message), e.message);
  assert.ok(e.message.includes("\\u0001\\u001b"), e.message);
  const c1 = refused("a: *x\u0085\u2028\n", "unidentified alias");
  assert.ok(c1.message.includes("\\u0085\\u2028"), c1.message);
});

Deno.test("yaml: what stringifyYaml writes reads back equal", () => {
  const v = { hooks: { argv: ["deno", "run", "x.ts"], env: { A: "1" }, n: 2 } };
  assert.deepEqual(parseYaml(stringifyYaml(v)), v);
});
