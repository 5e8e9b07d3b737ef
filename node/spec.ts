/**
 * Spec files (SPEC §3): YAML text in, task envelopes and the spec record out.
 * Pure: the clock, the random suffix and the dispatcher's name are arguments,
 * so the same input always gives the same output.
 */
import { createHash } from "node:crypto";
import { type Envelope, ID_PATTERN, type SpecRecord } from "./schema.ts";
import {
  checkFields,
  depsField,
  describe,
  envField,
  findCycle,
  idField,
  intField,
  isMap,
  listIds,
  readYaml,
  requiresField,
  runField,
  textField,
} from "./spec_fields.ts";
import { SpecError } from "./spec_error.ts";

export { SpecError };

/** What `parseSpec` produces: everything the dispatcher writes. */
export interface ParsedSpec {
  spec_id: string;
  envelopes: Envelope[];
  record: SpecRecord;
}

export interface ParseOptions {
  /** Dispatch time, ms since the epoch. */
  now: number;
  /** 6 chars of [a-z2-7]; ignored when the spec has `id:`. */
  suffix: string;
  /** Who dispatched, e.g. `alice@host`. */
  dispatchedBy: string;
}

/** Larger spec files are refused: the spec record must fit one etcd request. */
export const MAX_SPEC_BYTES = 256 * 1024;
/** More tasks are refused: their ids are listed in the spec record. */
export const MAX_TASKS = 5000;
/**
 * Most bytes one dispatch may store in etcd (every envelope and the spec
 * record, keys included): what a spec-level `requires`, repeated in each
 * envelope, can amplify to is bounded here.
 */
export const MAX_STORED_BYTES = 8 * 1024 * 1024;
/** Task timeouts above this are refused (timers cap at 2^31-1 ms). */
export const MAX_TIMEOUT_MS = 24 * 24 * 3600 * 1000;
/** Alphabet of the random spec id suffix. */
export const SUFFIX_PATTERN = /^[a-z2-7]{6}$/;

const SPEC_FIELDS = ["name", "id", "requires", "env", "tasks"];
const TASK_FIELDS = [
  "id",
  "run",
  "prompt",
  "requires",
  "env",
  "timeout",
  "retries",
  "max_attempts",
  "depends_on",
];
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses "500ms", "90s", "10m", "1h", "2d" or sums like "1h30m" into ms;
 * null if the text is not such a duration.
 */
export function parseDuration(text: string): number | null {
  if (typeof text !== "string" || text === "") return null;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const m = DURATION_PART.exec(text);
    if (m === null) return null;
    total += Number(m[1]) * UNIT_MS[m[2]];
  }
  const ms = Math.round(total);
  return Number.isSafeInteger(ms) ? ms : null;
}

/** Parses and validates one spec file; throws `SpecError` on the first problem. */
export function parseSpec(
  file: string,
  yamlText: string,
  opts: ParseOptions,
): ParsedSpec {
  const fail = (path: string, reason: string): never => {
    throw new SpecError(
      path === "" ? `${file}: ${reason}` : `${file}: ${path} ${reason}`,
      file,
      path,
    );
  };

  const size = new TextEncoder().encode(yamlText).length;
  if (size > MAX_SPEC_BYTES) {
    fail("", `is too large: ${size} bytes, at most ${MAX_SPEC_BYTES}`);
  }
  const doc = readYaml(file, yamlText);
  if (!isMap(doc)) {
    fail(
      "",
      `must be a YAML mapping with name and tasks: got ${describe(doc)}`,
    );
  }
  const top = doc as Record<string, unknown>;
  checkFields(top, SPEC_FIELDS, "", fail);

  // name and spec_id
  if (!("name" in top)) fail("name", "is required");
  const name = idField(top.name, "name", fail);
  let specId: string;
  if ("id" in top) {
    specId = idField(top.id, "id", fail);
  } else {
    if (!SUFFIX_PATTERN.test(opts.suffix)) {
      throw new TypeError(
        `parseSpec: suffix must be 6 chars of [a-z2-7]: got ${
          JSON.stringify(opts.suffix)
        }`,
      );
    }
    specId = `${name}-${opts.suffix}`;
    if (!ID_PATTERN.test(specId)) {
      fail(
        "name",
        `must be at most 56 characters so that the spec id (name-xxxxxx) fits 63: got ${name.length} characters`,
      );
    }
  }

  const defaultRequires = "requires" in top
    ? requiresField(top.requires, "requires", fail)
    : {};
  const defaultEnv = "env" in top ? envField(top.env, "env", fail) : {};

  if (!("tasks" in top)) fail("tasks", "is required");
  const tasks = top.tasks;
  if (!Array.isArray(tasks) || tasks.length === 0) {
    fail("tasks", `must be a non-empty list of tasks: got ${describe(tasks)}`);
  }
  const list = tasks as unknown[];
  if (list.length > MAX_TASKS) {
    fail("tasks", `must have at most ${MAX_TASKS} tasks: got ${list.length}`);
  }

  interface Draft {
    path: string;
    id: string;
    deps: string[];
    envelope: Envelope;
  }
  const drafts: Draft[] = [];
  const index = new Map<string, number>();
  list.forEach((raw, i) => {
    const path = `tasks[${i}]`;
    if (!isMap(raw)) {
      fail(path, `must be a mapping with id and run: got ${describe(raw)}`);
    }
    const t = raw as Record<string, unknown>;
    checkFields(t, TASK_FIELDS, path, fail);
    if (!("id" in t)) fail(`${path}.id`, "is required");
    const id = idField(t.id, `${path}.id`, fail);
    const seen = index.get(id);
    if (seen !== undefined) {
      fail(
        `${path}.id`,
        `${JSON.stringify(id)} is already used by tasks[${seen}]`,
      );
    }
    index.set(id, i);

    const run = "run" in t ? runField(t.run, `${path}.run`, fail) : null;
    const prompt = "prompt" in t
      ? textField(t.prompt, `${path}.prompt`, fail)
      : null;
    if (run === null && prompt === null) {
      fail(path, `(id ${id}) needs run or prompt`);
    }
    const requires = {
      ...defaultRequires,
      ...("requires" in t
        ? requiresField(t.requires, `${path}.requires`, fail)
        : {}),
    };
    // Only the task's own: the spec-level env is stored once, in the record.
    const env = "env" in t ? envField(t.env, `${path}.env`, fail) : {};
    let timeoutMs: number | null = null;
    if ("timeout" in t) {
      const ms = typeof t.timeout === "string"
        ? parseDuration(t.timeout)
        : null;
      if (ms === null) {
        fail(
          `${path}.timeout`,
          `must be a duration like "90s" or "10m": got ${describe(t.timeout)}`,
        );
      }
      if ((ms as number) <= 0) {
        fail(`${path}.timeout`, `must be positive: got ${describe(t.timeout)}`);
      }
      if ((ms as number) > MAX_TIMEOUT_MS) {
        fail(
          `${path}.timeout`,
          `must be at most 24d: got ${describe(t.timeout)}`,
        );
      }
      timeoutMs = ms;
    }
    const retries = "retries" in t
      // retries + 1 attempts must stay an exact integer, or the envelope
      // fails its own schema: stored, but no node or command could read it.
      ? intField(
        t.retries,
        0,
        `${path}.retries`,
        fail,
        Number.MAX_SAFE_INTEGER - 1,
      )
      : 0;
    let maxAttempts = Math.max(3, retries + 1);
    if ("max_attempts" in t) {
      maxAttempts = intField(t.max_attempts, 1, `${path}.max_attempts`, fail);
      if (maxAttempts < retries + 1) {
        fail(
          `${path}.max_attempts`,
          `must be at least retries + 1 (${
            retries + 1
          }) or the retries could never run: got ${maxAttempts}`,
        );
      }
    }
    const deps = "depends_on" in t
      ? depsField(t.depends_on, id, `${path}.depends_on`, fail)
      : [];

    drafts.push({
      path,
      id,
      deps,
      envelope: {
        task_id: `${specId}.${id}`,
        spec_id: specId,
        state: deps.length > 0 ? "BLOCKED" : "PENDING",
        state_version: 0,
        requires,
        run,
        prompt,
        env,
        timeout_ms: timeoutMs,
        depends_on: deps.map((d) => `${specId}.${d}`),
        attempts: 0,
        max_attempts: maxAttempts,
        retries_left: retries,
        claimant_node_id: null,
        claim_lease_id: null,
        fence: null,
        last_error: null,
        exit_code: null,
        dispatched_at: opts.now,
        started_at: null,
        finished_at: null,
        ran_on: null,
        cancel_requested: false,
        not_before: null,
      },
    });
  });

  // Dangling dependencies, then cycles.
  for (const d of drafts) {
    d.deps.forEach((dep, j) => {
      if (!index.has(dep)) {
        fail(
          `${d.path}.depends_on[${j}]`,
          `names an unknown task ${JSON.stringify(dep)} (tasks in this spec: ${
            listIds([...index.keys()])
          })`,
        );
      }
    });
  }
  const cycle = findCycle(drafts.map((d) => d.deps), index);
  if (cycle !== null) {
    const first = drafts[index.get(cycle[0])!];
    fail(`${first.path}.depends_on`, `forms a cycle: ${cycle.join(" -> ")}`);
  }

  const taskIds = drafts.map((d) => d.envelope.task_id);
  return {
    spec_id: specId,
    envelopes: drafts.map((d) => d.envelope),
    record: {
      spec_id: specId,
      yaml: yamlText,
      sha256: createHash("sha256").update(yamlText, "utf8").digest("hex"),
      dispatched_by: opts.dispatchedBy,
      dispatched_at: opts.now,
      task_ids: taskIds,
      env: defaultEnv,
    },
  };
}
