// A seeded random source with the few helpers the generators need. Built on
// the runtime's mulberry32 so a seed means the same thing everywhere.
import { mulberry32 } from '../runtime/random.ts';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

export function makeRng(seed: number): Rng {
  const next = mulberry32(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
}

/** Picks by weight: `[[w, value], ...]`. */
export function weighted<T>(r: Rng, options: readonly (readonly [number, T])[]): T {
  const total = options.reduce((s, [w]) => s + w, 0);
  let x = r.next() * total;
  for (const [w, v] of options) {
    if ((x -= w) < 0) return v;
  }
  return options[options.length - 1][1];
}
