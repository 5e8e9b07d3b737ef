/** Small statistics for bench samples: the same percentile rule everywhere. */

/** Nearest-rank percentile (p in 0..100) of `samples`; NaN when empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Rounds for tables: keeps two significant decimals below 10, none above 100. */
export function round(x: number): number {
  if (!Number.isFinite(x)) return x;
  if (Math.abs(x) >= 100) return Math.round(x);
  if (Math.abs(x) >= 10) return Math.round(x * 10) / 10;
  return Math.round(x * 100) / 100;
}
