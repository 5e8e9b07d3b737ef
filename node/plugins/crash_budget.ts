/**
 * The plugin crash budget (SPEC §7), pure: a function of the crash times and
 * the clock. The budget-th + 1 crash inside the window makes a plugin
 * `unstable`; once enough crashes have left the window it may restart again.
 * @module
 */

/** The rule. */
export interface CrashBudget {
  /** Crashes tolerated inside the window; one more makes it unstable. @default 3 */
  budget: number;
  /** @default 300000 (5 minutes) */
  window_ms: number;
}

/** SPEC §7: the 4th crash within 5 minutes marks a plugin unstable. */
export const DEFAULT_CRASH_BUDGET: CrashBudget = {
  budget: 3,
  window_ms: 300_000,
};

/** The crashes still inside the window at `now`, oldest first. */
export function crashesInWindow(
  crashes: readonly number[],
  now: number,
  rule: CrashBudget,
): number[] {
  const from = now - rule.window_ms;
  return crashes.filter((t) => Number.isFinite(t) && t > from).sort((a, b) =>
    a - b
  );
}

/** The list after a crash at `now`: the crash added, the ones out of the window dropped. */
export function addCrash(
  crashes: readonly number[],
  now: number,
  rule: CrashBudget,
): number[] {
  return crashesInWindow([...crashes, now], now, rule);
}

/**
 * When the budget is spent at `now`: the first time it may restart again
 * (all but `budget` crashes have left the window); null when it may restart now.
 */
export function unstableUntil(
  crashes: readonly number[],
  now: number,
  rule: CrashBudget,
): number | null {
  const live = crashesInWindow(crashes, now, rule);
  if (live.length <= rule.budget) return null;
  return live[live.length - rule.budget - 1] + rule.window_ms;
}
