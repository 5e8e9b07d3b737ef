import assert from "node:assert/strict";
import { printable } from "./printable.ts";

Deno.test("printable: control, C1, line separators and bidi overrides escaped; the rest as is", () => {
  assert.equal(printable("a\nb\x1b[31m\x85"), "a\\u000ab\\u001b[31m\\u0085");
  assert.equal(printable("a\u2028b"), "a\\u2028b");
  // U+202E would show "a‮txt.exe" as "aexe.txt"; isolates likewise.
  assert.equal(printable("a\u202eb\u2066c\u2069"), "a\\u202eb\\u2066c\\u2069");
  assert.equal(printable("héllo ✓ 日本"), "héllo ✓ 日本");
});
