// compareOutputs (-inf rows, NaNs, sampled rows), sampleRows, and the seeded
// random inputs and tables.
import { describe, expect, it } from 'vitest';
import { compareOutputs, sampleRows, TOLERANCE, withinTolerance } from '../../src/runtime/compare.ts';
import { defaultTables, mulberry32, randomInputs } from '../../src/runtime/random.ts';

const shape = { B: 1, Hq: 2, Nq: 3, D: 2 };
const full = () => ({ o: new Float64Array(12).map((_, i) => i / 10), lse: Float64Array.of(1, 2, 3, 4, 5, 6) });

describe('compareOutputs', () => {
  it('is zero for equal outputs and finds the worst element', () => {
    const want = full();
    expect(compareOutputs(full(), want, shape)).toMatchObject({ maxAbsErrO: 0, maxAbsErrLse: 0, nanCount: 0 });
    const got = full();
    got.o[(1 * 3 + 2) * 2 + 1] += 0.01; // b 0, h 1, row 2, col 1
    got.lse[1 * 3 + 0] -= 0.002; // h 1, row 0
    const c = compareOutputs(got, want, shape);
    expect(c.maxAbsErrO).toBeCloseTo(0.01, 12);
    expect(c.worst).toEqual({ b: 0, h: 1, row: 2, col: 1 });
    expect(c.maxAbsErrLse).toBeCloseTo(0.002, 12);
    expect(c.worstLse).toEqual({ b: 0, h: 1, row: 0, col: 0 });
    expect(withinTolerance(c, 1e-1)).toBe(true);
    expect(withinTolerance(c, TOLERANCE.f32)).toBe(false);
  });

  it('ignores rows where both LSEs are -inf; -inf against finite is an Infinity error', () => {
    const want = full();
    const got = full();
    want.lse[0] = got.lse[0] = -Infinity;
    expect(compareOutputs(got, want, shape).maxAbsErrLse).toBe(0);
    got.lse[4] = -Infinity;
    const c = compareOutputs(got, want, shape);
    expect(c.maxAbsErrLse).toBe(Infinity);
    expect(c.worstLse).toMatchObject({ h: 1, row: 1 });
    const d = compareOutputs(want, got, shape); // and the other way round
    expect(d.maxAbsErrLse).toBe(Infinity);
    expect(withinTolerance(d, 1)).toBe(false);
  });

  it('counts NaNs in the kernel output and fails on them', () => {
    const got = full();
    got.o[3] = NaN;
    got.lse[2] = NaN;
    const c = compareOutputs(got, full(), shape);
    expect(c.nanCount).toBe(2);
    expect(c.maxAbsErrO).toBe(0);
    expect(withinTolerance(c, 1)).toBe(false);
  });

  it('compares a compact reference (rows) against a full kernel output', () => {
    const got = full();
    const rows = [2, 0];
    // want holds rows 2 and 0 of each head.
    const want = { o: new Float64Array(8), lse: new Float64Array(4), rows };
    for (let h = 0; h < 2; h++) rows.forEach((r, i) => {
      want.lse[h * 2 + i] = got.lse[h * 3 + r];
      for (let d = 0; d < 2; d++) want.o[(h * 2 + i) * 2 + d] = got.o[(h * 3 + r) * 2 + d];
    });
    got.o[(0 * 3 + 1) * 2] = 99; // row 1 is not compared
    const c = compareOutputs(got, want, shape, rows);
    expect(c).toMatchObject({ maxAbsErrO: 0, maxAbsErrLse: 0, rowsCompared: 2 });
    got.o[(1 * 3 + 2) * 2] += 0.5;
    expect(compareOutputs(got, want, shape).worst).toEqual({ b: 0, h: 1, row: 2, col: 0 });
    expect(() => compareOutputs(got, want, shape, [1])).toThrow(/row 1 is not in the reference/);
    expect(() => compareOutputs({ o: new Float64Array(3), lse: new Float64Array(6) }, full(), shape)).toThrow(/got has 3 O/);
  });
});

describe('sampleRows', () => {
  it('is every row up to 512', () => {
    expect(sampleRows(512, 1)).toEqual(Array.from({ length: 512 }, (_, i) => i));
  });
  it('is 64 sorted distinct rows including the first and last beyond 512, the same for a seed', () => {
    const r = sampleRows(16384, 7);
    expect(r.length).toBe(64);
    expect(new Set(r).size).toBe(64);
    expect(r[0]).toBe(0);
    expect(r[63]).toBe(16383);
    expect([...r].sort((a, b) => a - b)).toEqual(r);
    expect(sampleRows(16384, 7)).toEqual(r);
    expect(sampleRows(16384, 8)).not.toEqual(r);
  });
});

describe('random inputs and tables', () => {
  it('are reproducible from the seed, unit-variance normal', () => {
    const s = { B: 1, Hq: 4, Hkv: 2, Nq: 256, Nk: 300, D: 32 };
    const a = randomInputs(s, 42);
    expect(a.q.length).toBe(4 * 256 * 32);
    expect(a.k.length).toBe(2 * 300 * 32);
    expect(randomInputs(s, 42).v).toEqual(a.v);
    expect(randomInputs(s, 43).v).not.toEqual(a.v);
    expect(a.q.subarray(0, 100)).not.toEqual(a.k.subarray(0, 100));
    const n = a.q.length;
    const mean = a.q.reduce((x, y) => x + y, 0) / n;
    const variance = a.q.reduce((x, y) => x + (y - mean) ** 2, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('mulberry32 is in [0, 1)', () => {
    const r = mulberry32(0);
    for (let i = 0; i < 1000; i++) {
      const x = r();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });

  it('default tables: ALiBi slopes, non-decreasing document ids, small ints, right lengths', () => {
    const sizes = { B: 3, Hq: 8, Nq: 50, Nk: 200 };
    const t = defaultTables([
      { name: 'slopes', elem: 'f32', axis: 'heads' },
      { name: 'doc', elem: 'i32', axis: 'kv_len' },
      { name: 'qdoc', elem: 'i32', axis: 'q_len' },
      { name: 'bias', elem: 'f32', axis: 'kv_len' },
      { name: 'kind', elem: 'i32', axis: 'batch' },
    ], sizes, 3);
    expect(Array.from(t.slopes)).toEqual(Array.from(Float32Array.from({ length: 8 }, (_, h) => 2 ** -(h + 1))));
    expect(t.doc).toBeInstanceOf(Int32Array);
    expect(t.doc.length).toBe(200);
    expect(t.qdoc.length).toBe(50);
    for (let i = 1; i < 200; i++) expect(t.doc[i] - t.doc[i - 1]).toBeGreaterThanOrEqual(0);
    expect(t.doc[0]).toBe(0);
    expect(t.doc[199]).toBeGreaterThan(0); // at least one boundary
    expect(t.bias).toBeInstanceOf(Float32Array);
    expect(t.bias.length).toBe(200);
    expect(t.kind.length).toBe(3);
    expect(Array.from(t.kind).every((x) => x >= 0 && x < 4)).toBe(true);
  });
});
