// Estimators of the two quantities of the paper's conditions, for one range
// of keys, under S ~ N(0, sigma^2) i.i.d. per key:
//   E[Z]  with Z = sum over kept keys of exp(L)   (total unnormalised attention)
//   E[H]  with H the entropy (nats) of softmax(L) over the kept keys of the range.
//
// Everything is kept in log space: ranges of ALiBi underflow exp() long
// before the verdict ranges, and the scale-invariant transform has huge
// log-normal tails.
import { mulberry32, normalSource } from '../runtime/random.ts';

export interface Estimate {
  /** ln E[.] for total attention; the value itself for entropy. */
  value: number;
  /** Standard error (same units as the reported value: Z, not ln Z); 0 for a closed form. */
  stderr: number;
}

export const normals = (seed: number): (() => number) => normalSource(mulberry32(seed));

/** Numerically stable running sums for ln sum exp(L) and the entropy of softmax(L). */
export class SoftmaxAccumulator {
  private max = -Infinity;
  private s0 = 0; // sum exp(L - max)
  private s1 = 0; // sum exp(L - max) * (L - max)

  add(l: number): void {
    if (l === -Infinity) return;
    if (this.max === -Infinity) {
      this.max = l;
    } else if (l > this.max) {
      // Rescale what we have to the new maximum; (L - max) shifts by delta too.
      const delta = this.max - l; // <= 0
      const r = Math.exp(delta);
      this.s1 = r * (this.s1 + delta * this.s0);
      this.s0 *= r;
      this.max = l;
    }
    const x = l - this.max;
    const e = Math.exp(x);
    this.s0 += e;
    this.s1 += e * x;
  }

  logSumExp(): number {
    return this.s0 === 0 ? -Infinity : this.max + Math.log(this.s0);
  }

  /** H = ln Z - E_p[L]; 0 when no key is kept (nothing to spread over). */
  entropy(): number {
    return this.s0 === 0 ? 0 : Math.log(this.s0) - this.s1 / this.s0;
  }
}

/** ln of sum_d exp(a_d^2 sigma^2 / 2 + c_d) over kept keys: the exact E[Z] for L = a*S + c. */
export function closedFormLogZ(slope: Float64Array, offset: Float64Array, kept: Uint8Array, sigma: number): number {
  const acc = new SoftmaxAccumulator();
  const v = (sigma * sigma) / 2;
  for (let i = 0; i < slope.length; i++) if (kept[i]) acc.add(slope[i] * slope[i] * v + offset[i]);
  return acc.logSumExp();
}

/** Mean and standard error of replica values. */
export function meanAndStderr(xs: readonly number[]): Estimate {
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const variance = n > 1 ? xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  return { value: mean, stderr: Math.sqrt(variance / n) };
}

/**
 * Combines replica estimates of Z given as ln Z_r: ln of their mean, and the
 * standard error of the mean in Z units (computed relative to the largest
 * replica so that nothing overflows before the final scaling).
 */
export function combineLogReplicas(logs: readonly number[]): Estimate {
  const top = Math.max(...logs);
  if (top === -Infinity) return { value: -Infinity, stderr: 0 };
  const { value, stderr } = meanAndStderr(logs.map((l) => Math.exp(l - top)));
  return { value: top + Math.log(value), stderr: stderr * Math.exp(top) };
}

/** Entropy of one draw of an affine range: L_i = slope_i * sigma * z_i + offset_i. */
export function affineEntropyDraw(slope: Float64Array, offset: Float64Array, kept: Uint8Array, sigma: number, z: () => number): number {
  const acc = new SoftmaxAccumulator();
  for (let i = 0; i < slope.length; i++) {
    // Draw for every key, kept or not, so the stream matches the generic path.
    const s = sigma * z();
    if (kept[i]) acc.add(slope[i] * s + offset[i]);
  }
  return acc.entropy();
}
