// The building blocks of the estimators against direct computation.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { closedFormLogZ, combineLogReplicas, SoftmaxAccumulator } from '../../src/analysis/estimators.ts';
import { distanceRanges } from '../../src/analysis/ranges.ts';
import { leastSquaresSlope, verdict } from '../../src/analysis/verdict.ts';

describe('SoftmaxAccumulator', () => {
  it('gives ln sum exp and the softmax entropy of any list, in any order', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: 1, maxLength: 40 }), (ls) => {
      const acc = new SoftmaxAccumulator();
      ls.forEach((l) => acc.add(l));
      const m = Math.max(...ls);
      const z = ls.reduce((s, l) => s + Math.exp(l - m), 0);
      const p = ls.map((l) => Math.exp(l - m) / z);
      const h = -p.reduce((s, q) => s + (q > 0 ? q * Math.log(q) : 0), 0);
      expect(acc.logSumExp()).toBeCloseTo(m + Math.log(z), 9);
      expect(acc.entropy()).toBeCloseTo(h, 9);
    }));
  });

  it('skips masked keys (-Infinity) and gives 0 entropy and -Infinity for no key', () => {
    const acc = new SoftmaxAccumulator();
    acc.add(-Infinity);
    expect(acc.logSumExp()).toBe(-Infinity);
    expect(acc.entropy()).toBe(0);
    [0, 0, -Infinity, 0].forEach((l) => acc.add(l));
    expect(acc.entropy()).toBeCloseTo(Math.log(3), 12);
  });
});

describe('closed form', () => {
  it('is ln sum of exp(a^2 sigma^2/2 + c) over kept keys, without overflow', () => {
    const slope = Float64Array.from([1, 2, 3]), offset = Float64Array.from([0, -1, 1000]), kept = Uint8Array.from([1, 1, 0]);
    const sigma = 0.5;
    expect(closedFormLogZ(slope, offset, kept, sigma)).toBeCloseTo(Math.log(Math.exp(0.125) + Math.exp(0.5 - 1)), 12);
    kept[2] = 1;
    expect(closedFormLogZ(slope, offset, kept, sigma)).toBeCloseTo(9 * 0.125 + 1000, 9);
  });

  it('combines replicas as the mean of Z with its standard error', () => {
    const zs = [1, 2, 3, 6];
    const est = combineLogReplicas(zs.map(Math.log));
    expect(Math.exp(est.value)).toBeCloseTo(3, 12);
    expect(est.stderr).toBeCloseTo(Math.sqrt(((4 + 1 + 0 + 9) / 3) / 4), 12);
  });
});

describe('ranges and verdict', () => {
  it('keeps whole ranges [t, t*delta) only', () => {
    expect(distanceRanges(10, 1e6).map((r) => [r.lo, r.hi])).toEqual([[1, 10], [10, 100], [100, 1000], [1000, 1e4], [1e4, 1e5], [1e5, 1e6]]);
    expect(distanceRanges(10, 999_998)).toHaveLength(5);
    // delta = 2: [1,2), [2,4), [4,8)
    expect(distanceRanges(2, 7).map((r) => r.hi - r.lo)).toEqual([1, 2, 4]);
  });

  it('fits the entropy slope by least squares and applies the limits', () => {
    expect(leastSquaresSlope([0, 1, 2], [1, 3, 5])).toBeCloseTo(2, 12);
    const rs = [1, 100, 1000, 10000].map((t) => ({ start: t, logTotal: Math.log(t === 1 ? 1 : 38 + t / 1e4), entropy: 0.2 * Math.log(t) }));
    const v = verdict(rs, 100);
    expect(v.total_attention_max_over_min).toBeCloseTo(39 / 38.01, 9);
    expect(v.entropy_slope).toBeCloseTo(0.2, 9);
    expect(v).toMatchObject({ total_attention_flat: true, scale_invariant_total_attention: true, scale_invariant_sparsity: true });
    const vanished = verdict([{ start: 100, logTotal: 0, entropy: 1 }, { start: 1000, logTotal: -Infinity, entropy: 1 }], 100);
    expect(vanished.total_attention_max_over_min).toBe(Infinity);
    expect(vanished.scale_invariant_total_attention).toBe(false);
  });
});
