// The verdict over the ranges that start at t >= 100 (issue 6):
//   condition 1 (scale-invariant total attention): max/min of E[Z_t] <= 1.1;
//   condition 2 (scale-invariant sparsity): the least-squares slope of the
//   expected entropy against ln t is < 0.5 (plain softmax: ~1.0, since its
//   entropy grows like ln of the number of keys; o(log t) means slope -> 0).

export const MAX_OVER_MIN_LIMIT = 1.1;
export const ENTROPY_SLOPE_LIMIT = 0.5;

export interface VerdictInput {
  start: number;
  /** ln E[Z_t] (may be -Infinity when no key of the range is kept). */
  logTotal: number;
  entropy: number;
}

export interface Verdict {
  /** max/min of E[Z_t] <= 1.1 over the verdict ranges. */
  total_attention_flat: boolean;
  /** max/min of E[Z_t]; Infinity when some range has no attention at all (or it overflows). */
  total_attention_max_over_min: number;
  /** d E[H_t] / d ln t, least squares. */
  entropy_slope: number;
  /** Condition 1 holds (E[Z_t] flat, so Theta(1)): the same test as total_attention_flat. */
  scale_invariant_total_attention: boolean;
  /** Condition 2 holds (entropy slope < 0.5). */
  scale_invariant_sparsity: boolean;
}

export function leastSquaresSlope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxy / sxx;
}

export function verdict(ranges: readonly VerdictInput[], minStart: number): Verdict {
  const rs = ranges.filter((r) => r.start >= minStart);
  if (rs.length < 2) throw new Error(`internal error: the verdict needs two ranges starting at t >= ${minStart}, has ${rs.length}`);
  const logs = rs.map((r) => r.logTotal);
  const hi = Math.max(...logs), lo = Math.min(...logs);
  // In log space, so that ranges whose E[Z_t] under- or overflows still compare.
  const ratio = lo === -Infinity || hi === Infinity ? Infinity : Math.exp(hi - lo);
  const slope = leastSquaresSlope(rs.map((r) => Math.log(r.start)), rs.map((r) => r.entropy));
  const flat = ratio <= MAX_OVER_MIN_LIMIT;
  return {
    total_attention_flat: flat,
    total_attention_max_over_min: ratio,
    entropy_slope: slope,
    scale_invariant_total_attention: flat,
    scale_invariant_sparsity: slope < ENTROPY_SLOPE_LIMIT,
  };
}
