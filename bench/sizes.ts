/**
 * The bench's sizes and cluster settings, one definition for `bench/main.ts`
 * (the whole table) and `bench/row.ts` (one row at a time).
 */

/** Run sizes: the full run, and a smoke run under 2 minutes for CI. */
export interface Sizes {
  /** etcd write-limit measurement (ms). */
  wMs: number;
  /** Control-plane tasks (noop pool), and the BullMQ no-op peer's jobs. */
  cp: number;
  /** End-to-end tasks running `true`. */
  e2e: number;
  hooks: number;
  /** Single-task dispatches for dispatch→started. */
  lat: number;
  /** boi failover trials. */
  fo: number;
  /** BullMQ failover trials (30–60 s each, concurrently). */
  bullFo: number;
  cliRuns: number;
  /** Tasks queued at once: the small and the large backlog (noop pool, 3 nodes). */
  backlog: [number, number];
  /** Node counts of the node-count row, smallest first (noop pool). */
  nodeCounts: number[];
  /** Tasks of each node-count run. */
  nodeCountTasks: number;
}

/** `quick`: the CI smoke run; otherwise the full run of issue 16. */
export function sizes(quick: boolean): Sizes {
  return quick
    ? {
      wMs: 1000,
      cp: 500,
      e2e: 200,
      hooks: 100,
      lat: 20,
      fo: 2,
      bullFo: 0,
      cliRuns: 3,
      // The 3-node run of 300 is made once for both rows (scale.ts).
      backlog: [300, 2000],
      nodeCounts: [3, 6],
      nodeCountTasks: 300,
    }
    : {
      wMs: 3000,
      cp: 5000,
      e2e: 2000,
      hooks: 2000,
      lat: 100,
      fo: 20,
      bullFo: 20,
      cliRuns: 5,
      backlog: [500, 20_000],
      nodeCounts: [3, 6, 9],
      nodeCountTasks: 3000,
    };
}

/**
 * Slots per node in the noop-pool runs: the noop pool finishes at once, so
 * slots are cheap. The BullMQ no-op peer gets the same: 3 worker processes
 * × concurrency 128, like 3 nodes × `BOI_WORKERS_MAX` 128.
 */
export const CP_WORKERS = 128;
/** The node's default, and BullMQ's end-to-end peer gets the same: 3 processes × 4. */
export const E2E_WORKERS = 4;
/** Lease TTL of the bench's clusters (s): 2, so the failover row is short. */
export const TTL_S = 2;
/**
 * Lease TTL of the backlog and node-count clusters (s): the node's default.
 * These rows measure CPU per task; with 2 s, a machine at load 30 (other
 * agents' runs) starved keepalives, leases expired and 715 of 3,000 tasks
 * on 9 nodes ran three times and FAILED, so the row measured the re-runs.
 */
export const SCALE_TTL_S = 10;
