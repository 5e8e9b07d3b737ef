import assert from "node:assert/strict";
import { Envelope, SpecRecord } from "./schema.ts";
import { MAX_SPEC_BYTES, parseDuration, parseSpec, SpecError } from "./spec.ts";

const OPTS = { now: 1_700_000_000_000, suffix: "abc234", dispatchedBy: "t@h" };

function parse(yaml: string) {
  return parseSpec("spec.yaml", yaml, OPTS);
}

/** Asserts that `yaml` is refused with a message containing every fragment. */
function refused(yaml: string, ...fragments: string[]): SpecError {
  let caught: unknown;
  try {
    parse(yaml);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SpecError, `expected SpecError for:\n${yaml}`);
  const msg = caught.message;
  assert.ok(!msg.includes("\n"), `one line: ${msg}`);
  assert.ok(msg.startsWith("spec.yaml"), msg);
  for (const f of fragments) {
    assert.ok(msg.includes(f), `${JSON.stringify(msg)} lacks ${f}`);
  }
  return caught;
}

const NIGHTLY = `
name: nightly-build
requires: { os: linux }
env: { LANG: C }
tasks:
  - id: compile
    run: make all
    requires: { x-acme-gpu: a100 }
    env: { CI: "1" }
    timeout: 10m
    retries: 2
    max_attempts: 5
  - id: test
    run: [make, test]
    depends_on: [compile]
  - id: review
    prompt: "Review the diff"
`;

Deno.test("parseSpec builds envelopes and the record", () => {
  const p = parse(NIGHTLY);
  assert.equal(p.spec_id, "nightly-build-abc234");
  assert.deepEqual(p.record.task_ids, [
    "nightly-build-abc234.compile",
    "nightly-build-abc234.test",
    "nightly-build-abc234.review",
  ]);
  assert.equal(p.record.yaml, NIGHTLY);
  assert.equal(p.record.dispatched_by, "t@h");
  assert.equal(p.record.dispatched_at, OPTS.now);
  assert.match(p.record.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(p.record.env, { LANG: "C" });
  SpecRecord.parse(p.record);
  for (const e of p.envelopes) Envelope.parse(e);

  const [compile, test, review] = p.envelopes;
  assert.deepEqual(compile, {
    task_id: "nightly-build-abc234.compile",
    spec_id: "nightly-build-abc234",
    state: "PENDING",
    state_version: 0,
    requires: { os: "linux", "x-acme-gpu": "a100" },
    run: "make all",
    prompt: null,
    env: { CI: "1" }, // the spec-level LANG is in the record, once
    timeout_ms: 600_000,
    depends_on: [],
    attempts: 0,
    max_attempts: 5,
    retries_left: 2,
    claimant_node_id: null,
    claim_lease_id: null,
    fence: null,
    last_error: null,
    exit_code: null,
    dispatched_at: OPTS.now,
    started_at: null,
    finished_at: null,
    ran_on: null,
    cancel_requested: false,
    not_before: null,
  });
  assert.equal(test.state, "BLOCKED");
  assert.deepEqual(test.run, ["make", "test"]);
  assert.deepEqual(test.depends_on, ["nightly-build-abc234.compile"]);
  assert.equal(test.max_attempts, 3);
  assert.equal(test.timeout_ms, null);
  assert.deepEqual(test.requires, { os: "linux" });
  assert.equal(review.run, null);
  assert.equal(review.prompt, "Review the diff");
});

Deno.test("parseSpec is deterministic and honours id:", () => {
  assert.deepEqual(parse(NIGHTLY), parse(NIGHTLY));
  const p = parse("name: n\nid: fixed-1\ntasks: [{id: a, run: x}]");
  assert.equal(p.spec_id, "fixed-1");
  assert.equal(p.envelopes[0].task_id, "fixed-1.a");
});

Deno.test("parseSpec defaults max_attempts to max(3, retries + 1)", () => {
  const p = parse("name: n\ntasks: [{id: a, run: x, retries: 6}]");
  assert.equal(p.envelopes[0].max_attempts, 7);
  assert.equal(p.envelopes[0].retries_left, 6);
});

Deno.test("parseSpec: the largest retries still gives an envelope its own schema reads (9007199254740991 was stored unreadable)", () => {
  const p = parse(
    "name: n\ntasks: [{id: a, run: x, retries: 9007199254740990}]",
  );
  assert.equal(Envelope.safeParse(p.envelopes[0]).success, true);
  assert.throws(
    () => parse("name: n\ntasks: [{id: a, run: x, retries: 9007199254740991}]"),
    /tasks\[0\]\.retries must be at most 9007199254740990: got 9007199254740991/,
  );
});

Deno.test("parseSpec reads the example", async () => {
  const url = new URL("../examples/hello.yaml", import.meta.url);
  const p = parseSpec("hello.yaml", await Deno.readTextFile(url), OPTS);
  assert.equal(p.spec_id, "hello-abc234");
  assert.equal(p.envelopes.length, 3);
  assert.deepEqual(p.envelopes.map((e) => e.state), [
    "PENDING",
    "PENDING",
    "BLOCKED",
  ]);
});

Deno.test("YAML syntax errors give the line", () => {
  const e = refused("name: x\ntasks:\n  - id: a\n    run: [1\n", "spec.yaml:");
  assert.match(e.message, /^spec\.yaml:\d+:\d+: invalid YAML: /);
  refused("name: x\nname: y\ntasks: []\n", "spec.yaml:2:1", "duplicated");
  refused(
    "a: 1\n---\nb: 2\n",
    "spec.yaml:2:1: invalid YAML",
    "one YAML document",
  );
  refused("a: &x [1]\nb: *y\n", "invalid YAML");
});

Deno.test("documents that are not mappings are refused", () => {
  refused("", "spec.yaml: must be a YAML mapping", "got nothing");
  refused("# only a comment\n", "got nothing");
  refused("- a\n- b\n", "got a list");
  refused(
    "\u0000\u0001\u00ff garbage",
    "spec.yaml:1:1: invalid YAML: null byte is not allowed",
  );
  refused("x".repeat(MAX_SPEC_BYTES + 1), "is too large");
});

Deno.test("unknown fields are refused with their path", () => {
  refused(
    "name: x\ndescription: y\ntasks: [{id: a, run: b}]",
    "spec.yaml: description is not a known field",
    "allowed: name, id, requires, env, tasks",
  );
  refused(
    "name: x\ntasks:\n  - {id: a, run: b}\n  - {id: c, run: d, tiemout: 5s}\n",
    "spec.yaml: tasks[1].tiemout is not a known field",
  );
  refused(
    'name: x\ntasks: [{id: a, run: b, "we ird": 1}]',
    'tasks[0]["we ird"] is not a known field',
  );
});

Deno.test("name, id and task ids must match the grammar", () => {
  refused("tasks: [{id: a, run: b}]", "spec.yaml: name is required");
  refused("name: Hello\ntasks: [{id: a, run: b}]", "name must match");
  refused(
    "name: 12\ntasks: [{id: a, run: b}]",
    "name must match",
    "got the number 12",
  );
  refused(
    `name: ${"n".repeat(57)}\ntasks: [{id: a, run: b}]`,
    "name must be at most 56 characters",
  );
  refused(
    `name: n\nid: ${"n".repeat(64)}\ntasks: [{id: a, run: b}]`,
    "spec.yaml: id must match",
  );
  refused("name: n\ntasks: [{run: b}]", "tasks[0].id is required");
  refused("name: n\ntasks: [{id: A.b, run: b}]", "tasks[0].id must match");
  refused(
    `name: n\ntasks: [{id: ${"x".repeat(5000)}, run: b}]`,
    "tasks[0].id must match",
    "…",
  );
  refused("name: n\ntasks: [{id: '../x', run: b}]", "tasks[0].id must match");
});

Deno.test("an unquoted numeric id is named as the number YAML read, with the fix: quote it (007 reads as 7)", () => {
  refused(
    "name: n\ntasks: [{id: 007, run: b}]",
    "tasks[0].id must match",
    "got the number 7 (YAML reads unquoted digits as a number: quote the id)",
  );
  assert.equal(
    parse("name: n\ntasks: [{id: '007', run: b}]").envelopes[0].task_id,
    "n-abc234.007",
  );
});

Deno.test("duplicate task ids are refused", () => {
  refused(
    "name: n\ntasks:\n- {id: a, run: x}\n- {id: b, run: x}\n- {id: a, run: y}",
    'spec.yaml: tasks[2].id "a" is already used by tasks[0]',
  );
});

Deno.test("tasks must be a non-empty list of mappings", () => {
  refused("name: n", "spec.yaml: tasks is required");
  refused("name: n\ntasks: []", "tasks must be a non-empty list");
  refused("name: n\ntasks: {a: 1}", "tasks must be a non-empty list");
  refused("name: n\ntasks: [hello]", "tasks[0] must be a mapping");
});

Deno.test("a task needs run or prompt, of the right shape", () => {
  refused("name: n\ntasks: [{id: a}]", "tasks[0] (id a) needs run or prompt");
  refused(
    "name: n\ntasks: [{id: a, run: ''}]",
    "tasks[0].run must not be empty",
  );
  refused("name: n\ntasks: [{id: a, run: []}]", "tasks[0].run must be");
  refused(
    "name: n\ntasks: [{id: a, run: [ls, 1]}]",
    "tasks[0].run[1]",
    "quote",
  );
  refused("name: n\ntasks: [{id: a, run: {x: 1}}]", "tasks[0].run must be");
  refused(
    "name: n\ntasks: [{id: a, prompt: 5}]",
    "tasks[0].prompt must be a string",
  );
});

Deno.test("bad timeouts are refused", () => {
  refused(
    "name: n\ntasks: [{id: a, run: b}, {id: c, run: d}, {id: e, run: f, timeout: ten}]",
    'spec.yaml: tasks[2].timeout must be a duration like "90s" or "10m": got "ten"',
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, timeout: 90}]",
    "tasks[0].timeout",
    "got 90",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, timeout: 0s}]",
    "tasks[0].timeout must be positive",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, timeout: 30d}]",
    "tasks[0].timeout must be at most 24d",
  );
});

Deno.test("bad retries and max_attempts are refused", () => {
  refused(
    "name: n\ntasks: [{id: a, run: b, retries: -1}]",
    "tasks[0].retries must be an integer >= 0",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, retries: 1.5}]",
    "tasks[0].retries",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, retries: '2'}]",
    "tasks[0].retries",
    'got "2"',
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, retries: 1e20}]",
    "tasks[0].retries must be at most 9007199254740990: got 100000000000000000000",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, max_attempts: 0}]",
    "tasks[0].max_attempts must be an integer >= 1",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, retries: 4, max_attempts: 2}]",
    "tasks[0].max_attempts must be at least retries + 1 (5)",
  );
});

Deno.test("bad capability keys and values are refused", () => {
  refused(
    "name: n\ntasks: [{id: a, run: b, requires: {gpu: a100}}]",
    "spec.yaml: tasks[0].requires.gpu is not a valid capability",
    'or match x-<vendor>-<tag>: got "gpu"',
  );
  refused(
    "name: n\nrequires: {os: plan9}\ntasks: [{id: a, run: b}]",
    "spec.yaml: requires.os is not a valid capability",
    "linux, darwin, windows",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, requires: {x-acme-mem: 64}}]",
    "tasks[0].requires.x-acme-mem must be a string: got 64",
    'quote it: "64"',
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, requires: {x-acme-ok: true}}]",
    "tasks[0].requires.x-acme-ok must be a string",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, requires: [os]}]",
    "tasks[0].requires must be a mapping",
  );
});

Deno.test("bad env is refused", () => {
  refused(
    "name: n\ntasks: [{id: a, run: b, env: {CI: 1}}]",
    "tasks[0].env.CI must be a string",
    'quote it: "1"',
  );
  refused(
    'name: n\ntasks: [{id: a, run: b, env: {"A=B": x}}]',
    'tasks[0].env["A=B"] is not a valid environment variable name',
  );
  refused(
    "name: n\nenv: [a]\ntasks: [{id: a, run: b}]",
    "spec.yaml: env must be a mapping",
  );
});

Deno.test("an env variable named __proto__ is refused: JSON readers drop it, so the task would run without it (SPEC §6: nothing stored is lost)", () => {
  refused(
    "name: n\ntasks: [{id: a, run: b, env: {__proto__: x}}]",
    "tasks[0].env.__proto__ cannot be stored",
    'got "__proto__"',
  );
  refused(
    "name: n\nenv: {__proto__: x}\ntasks: [{id: a, run: b}]",
    "spec.yaml: env.__proto__ cannot be stored",
  );
});

Deno.test("dependency errors: dangling, self, duplicate, cycles", () => {
  refused(
    "name: n\ntasks: [{id: a, run: b, depends_on: [zz]}]",
    'spec.yaml: tasks[0].depends_on[0] names an unknown task "zz"',
    "tasks in this spec: a",
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, depends_on: [a]}]",
    'tasks[0].depends_on[0] names the task itself ("a")',
  );
  refused(
    "name: n\ntasks: [{id: a, run: b}, {id: c, run: b, depends_on: [a, a]}]",
    'tasks[1].depends_on[1] names "a" twice',
  );
  refused(
    "name: n\ntasks: [{id: a, run: b, depends_on: a}]",
    "tasks[0].depends_on must be a list",
  );
  refused(
    "name: n\ntasks:\n- {id: a, run: x, depends_on: [b]}\n- {id: b, run: x, depends_on: [a]}\n",
    "spec.yaml: tasks[0].depends_on forms a cycle: a -> b -> a",
  );
  refused(
    "name: n\ntasks:\n- {id: s, run: x}\n- {id: a, run: x, depends_on: [s, c]}\n" +
      "- {id: b, run: x, depends_on: [a]}\n- {id: c, run: x, depends_on: [b]}\n",
    "tasks[1].depends_on forms a cycle: a -> c -> b -> a",
  );
});

Deno.test("long dependency chains do not overflow", () => {
  const n = 3000;
  const lines = ["name: chain", "tasks:", "- {id: t0, run: x}"];
  for (let i = 1; i < n; i++) {
    lines.push(`- {id: t${i}, run: x, depends_on: [t${i - 1}]}`);
  }
  assert.equal(parse(lines.join("\n")).envelopes.length, n);
  lines[2] = `- {id: t0, run: x, depends_on: [t${n - 1}]}`;
  refused(lines.join("\n"), "forms a cycle: t0 -> t2999 -> t2998");
});

Deno.test("YAML 1.2: yes and dates stay strings", () => {
  const p = parse(
    "name: n\ntasks: [{id: a, run: b, env: {A: yes, D: 2001-12-14}}]",
  );
  assert.deepEqual(p.envelopes[0].env, { A: "yes", D: "2001-12-14" });
});

Deno.test("parseDuration", () => {
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("10m"), 600_000);
  assert.equal(parseDuration("1h"), 3_600_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("2d"), 172_800_000);
  assert.equal(parseDuration("0s"), 0);
  for (const bad of ["", "10", "s", "ten", "1 h", "-1s", "1x", "1s ", "1e3s"]) {
    assert.equal(parseDuration(bad), null, bad);
  }
  assert.equal(parseDuration("9".repeat(30) + "h"), null);
});

Deno.test("messages stay one printable line whatever the input", () => {
  const e = refused("name: n\ntasks:\n  - id: a\n    run: *x\u0001\u001b\n");
  // deno-lint-ignore no-control-regex -- control characters are the point
  assert.doesNotMatch(e.message, /[\x00-\x1f\x7f]/);
  assert.match(e.message, /\\u0001/);
  refused(
    'name: n\ntasks: [{id: a, run: "a\\0b"}]',
    "tasks[0].run must not contain NUL characters",
  );
  refused(
    'name: n\ntasks: [{id: a, run: [sh, "a\\0b"]}]',
    "tasks[0].run[1] must not contain NUL characters",
  );
});
