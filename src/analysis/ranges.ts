// The ranges of key distances [t, t*delta) for t = 1, delta, delta^2, ...
// Only whole ranges are kept: a range is analysed when its last distance
// exists (<= maxDistance), so every range has the same relative width.

export interface DistanceRange {
  /** t, the range start (real). */
  start: number;
  /** t * delta (exclusive). */
  end: number;
  /** Integer distances lo .. hi-1 lie in [start, end). */
  lo: number;
  hi: number;
}

export function distanceRanges(delta: number, maxDistance: number): DistanceRange[] {
  if (!(delta > 1)) throw new Error(`internal error: delta must be > 1, got ${delta}`);
  const out: DistanceRange[] = [];
  for (let k = 0; ; k++) {
    const start = delta ** k, end = delta ** (k + 1);
    const lo = Math.ceil(start), hi = Math.ceil(end);
    if (hi - 1 > maxDistance) break;
    if (hi > lo) out.push({ start, end, lo, hi });
  }
  return out;
}

/** Ranges that start at t >= minStart: the ones the verdict looks at. */
export const VERDICT_MIN_START = 100;
