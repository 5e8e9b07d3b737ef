/**
 * The read-only dashboard (SPEC §12): `/` and `/tail/{task_id}` serve pages
 * (node/shell/dashboard_page.ts), `/api/state` a JSON snapshot built from
 * this node's view, `/api/events` the same snapshot as Server-Sent Events
 * whenever it changes, `/api/tasks/{task_id}` one task and where its log is.
 * Nothing here writes anything.
 */
import {
  type Envelope,
  TASK_STATES,
  type TaskState,
  TERMINAL_STATES,
} from "../schema.ts";
import type { NodeView } from "../core/view.ts";
import { taskLogInfo } from "./tail.ts";

export interface NodeCard {
  node_id: string;
  addr: string;
  self: boolean;
  version: string;
  started_at: number;
  health: string;
  workers_busy: number | null;
  workers_max: number | null;
  caps: Record<string, string>;
}

export interface SpecRow {
  spec_id: string;
  dispatched_at: number;
  dispatched_by: string;
  total: number;
  counts: Record<TaskState, number>;
  /** DONE + FAILED + CANCELLED. */
  finished: number;
}

export interface TaskRow {
  task_id: string;
  spec_id: string;
  state: TaskState;
  attempts: number;
  max_attempts: number;
  claimant_node_id: string | null;
  ran_on: string | null;
  /** Where its log is: the claimant while it runs, else ran_on. */
  log_node: string | null;
  dispatched_at: number;
  started_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
  last_error: string | null;
}

export interface DashboardState {
  node_id: string;
  health: { ok: boolean; reason: string };
  nodes: NodeCard[];
  specs: SpecRow[];
  tasks: TaskRow[];
  /** Tasks by state over every spec in the view. */
  totals: Record<TaskState, number>;
  /** How many specs and tasks were left out by the limits. */
  omitted: { specs: number; tasks: number };
}

export interface StateLimits {
  /** Newest specs shown. @default 50 */
  specs: number;
  /** Task rows, newest specs first. @default 1000 */
  tasks: number;
}

const DYNAMIC = new Set(["workers_busy", "workers_max", "health"]);

function zeroCounts(): Record<TaskState, number> {
  return Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<
    TaskState,
    number
  >;
}

function taskRow(e: Envelope): TaskRow {
  const terminal = TERMINAL_STATES.has(e.state);
  return {
    task_id: e.task_id,
    spec_id: e.spec_id,
    state: e.state,
    attempts: e.attempts,
    max_attempts: e.max_attempts,
    claimant_node_id: e.claimant_node_id,
    ran_on: e.ran_on,
    log_node: terminal
      ? e.ran_on ?? e.claimant_node_id
      : e.claimant_node_id ?? e.ran_on,
    dispatched_at: e.dispatched_at,
    started_at: e.started_at,
    finished_at: e.finished_at,
    exit_code: e.exit_code,
    last_error: e.last_error,
  };
}

/** The dashboard's snapshot of `view` (pure; `health` is the node's own /healthz answer). */
export function dashboardState(
  view: NodeView,
  health: { ok: boolean; reason: string },
  limits: StateLimits = { specs: 50, tasks: 1000 },
): DashboardState {
  const self = view.config.node_id;
  const nodes: NodeCard[] = [...view.nodes.values()].map((n) => {
    const c = view.caps.get(n.value.node_id)?.value;
    const caps: Record<string, string> = { ...c?.static };
    for (const [k, v] of Object.entries(c?.dynamic ?? {})) {
      if (!DYNAMIC.has(k) && typeof v === "string") caps[k] = v;
    }
    return {
      node_id: n.value.node_id,
      addr: n.value.addr,
      self: n.value.node_id === self,
      version: n.value.version,
      started_at: n.value.started_at,
      health: c?.dynamic.health ?? "unknown",
      workers_busy: c?.dynamic.workers_busy ?? null,
      workers_max: c?.dynamic.workers_max ?? null,
      caps,
    };
  }).sort((a, b) => a.node_id < b.node_id ? -1 : 1);

  const totals = zeroCounts();
  const specs: SpecRow[] = [];
  for (const s of view.specs.values()) {
    const counts = zeroCounts();
    let total = 0;
    for (const id of view.spec_tasks.get(s.value.spec_id) ?? []) {
      const t = view.tasks.get(id);
      if (!t) continue;
      counts[t.value.state]++;
      totals[t.value.state]++;
      total++;
    }
    specs.push({
      spec_id: s.value.spec_id,
      dispatched_at: s.value.dispatched_at,
      dispatched_by: s.value.dispatched_by,
      total,
      counts,
      finished: counts.DONE + counts.FAILED + counts.CANCELLED,
    });
  }
  specs.sort((a, b) =>
    b.dispatched_at - a.dispatched_at || (a.spec_id < b.spec_id ? -1 : 1)
  );
  const shown = specs.slice(0, limits.specs);
  const tasks: TaskRow[] = [];
  let omittedTasks = 0;
  for (const s of shown) {
    const order = view.specs.get(s.spec_id)?.value.task_ids ?? [];
    const ids = new Set(order.filter((id) => view.tasks.has(id)));
    for (const id of view.spec_tasks.get(s.spec_id) ?? []) {
      if (view.tasks.has(id)) ids.add(id);
    }
    for (const id of ids) {
      if (tasks.length >= limits.tasks) {
        omittedTasks++;
        continue;
      }
      tasks.push(taskRow(view.tasks.get(id)!.value));
    }
  }
  return {
    node_id: self,
    health,
    nodes,
    specs: shown,
    tasks,
    totals,
    omitted: {
      specs: specs.length - shown.length,
      tasks: omittedTasks + specs.slice(limits.specs).reduce(
        (n, s) => n + s.total,
        0,
      ),
    },
  };
}

/** `/api/tasks/{task_id}`: one task, and the node (and address) that has its log. */
export function taskDetail(view: NodeView, taskId: string) {
  const t = view.tasks.get(taskId)?.value;
  if (!t) return null;
  const info = taskLogInfo(view, taskId);
  const logNode = info?.log_node ?? null;
  return {
    node_id: view.config.node_id,
    task: taskRow(t),
    terminal: TERMINAL_STATES.has(t.state),
    log_node: logNode,
    log_addr: logNode === null
      ? null
      : view.nodes.get(logNode)?.value.addr ?? null,
  };
}

export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}

/**
 * `/api/events`: an SSE stream with an `event: state` of the snapshot each
 * time it differs from the last one sent (checked every `intervalMs`, and
 * only while the client keeps up), and a comment every 15 s to keep proxies
 * from closing an idle stream.
 */
export function stateEvents(
  snapshot: () => DashboardState | null,
  signal: AbortSignal,
  intervalMs = 500,
): Response {
  const enc = new TextEncoder();
  let last = "";
  let timer: ReturnType<typeof setInterval> | undefined;
  let quiet = 0;
  const stop = () => clearInterval(timer);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = () => {
        if (signal.aborted) {
          stop();
          try {
            controller.close();
          } catch { /* already closed */ }
          return;
        }
        // A client that does not read (a sleeping laptop's tab, a dead
        // connection the kernel still retries) would queue a snapshot per
        // tick, ~300 KB each at 1,000 rows: skip ticks until it drained.
        // The next one it reads is the latest, so nothing it needs is lost.
        if ((controller.desiredSize ?? 1) <= 0) return;
        const s = snapshot();
        const json = s === null ? "" : JSON.stringify(s);
        try {
          if (json !== "" && json !== last) {
            last = json;
            quiet = 0;
            controller.enqueue(enc.encode(`event: state\ndata: ${json}\n\n`));
          } else if (++quiet * intervalMs >= 15_000) {
            quiet = 0;
            controller.enqueue(enc.encode(`: ping\n\n`));
          }
        } catch {
          stop(); // the client went away
        }
      };
      controller.enqueue(enc.encode(`retry: 1000\n\n`));
      send();
      timer = setInterval(send, intervalMs);
    },
    cancel() {
      stop();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
