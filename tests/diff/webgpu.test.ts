// Differential tests of the WGSL kernels on the WebGPU adapter (lavapipe in
// CI) against the float64 reference, with KERNELS.md's tolerances (never
// loosened). Skips with the reason when there is no adapter.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOLERANCE } from '../../src/runtime/compare.ts';
import { diffCase, loadExample, loadSpecText, type Case } from './wgsl-harness.ts';
import { openTestBackend } from './wgsl-harness.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.attn')).sort();

const backend = await openTestBackend('tests/diff/webgpu.test.ts');
const gpu = backend ? describe : describe.skip;
afterAll(() => backend?.dispose());

// A covering set rather than the full cross product: lavapipe's LLVM takes
// seconds to compile each kernel, so each example gets a few kernels and each
// kernel several shapes. Together: lengths {1, 17, 128, 300}, head dims
// {32, 64, 128}, both dtypes, GQA (Hq/Hkv = 2, 4 and 8), MHA, q_len < kv_len
// (decode and 17/300), lengths that are not multiples of the tiles, and the
// GQA-packed decode path where the spec allows it (render/wgsl.ts).
function casesFor(index: number, file: string): Case[] {
  const f32: Case[] = [
    { B: 1, Hq: 4, Hkv: 1, Nq: 300, Nk: 300, D: 64, dtype: 'f32' },
    { B: 2, Hq: 4, Hkv: 2, Nq: 17, Nk: 300, D: 64, dtype: 'f32' },
    { B: 1, Hq: 2, Hkv: 2, Nq: 1, Nk: 128, D: 64, dtype: 'f32' },
    { B: 1, Hq: 1, Hkv: 1, Nq: 1, Nk: 1, D: 64, dtype: 'f32' },
    // GQA packing (a kv-head group's rows in one workgroup where Nq * Hq / Hkv fits a row tile): 8 heads of 2
    // rows each, and 4 groups of 2 heads of 3 rows (a ragged Nq, both batches)
    { B: 1, Hq: 8, Hkv: 1, Nq: 2, Nk: 200, D: 64, dtype: 'f32' },
    { B: 2, Hq: 8, Hkv: 4, Nq: 3, Nk: 77, D: 64, dtype: 'f32' },
  ];
  const D16 = index % 2 === 0 ? 32 : 128;
  const f16: Case[] = [
    { B: 1, Hq: 4, Hkv: 2, Nq: 128, Nk: 128, D: D16, dtype: 'f16' },
    { B: 1, Hq: 2, Hkv: 1, Nq: 17, Nk: 17, D: D16, dtype: 'f16' },
    { B: 1, Hq: 2, Hkv: 1, Nq: 1, Nk: 300, D: D16, dtype: 'f16' },
  ];
  const more: Case[] = file === 'causal.attn' || file === 'scale_invariant.attn'
    ? [
      { B: 1, Hq: 4, Hkv: 2, Nq: 17, Nk: 300, D: 128, dtype: 'f32' },
      { B: 1, Hq: 2, Hkv: 1, Nq: 128, Nk: 128, D: 32, dtype: 'f32' },
    ]
    : [];
  return [...f32, ...f16, ...more];
}

const label = (c: Case) => `${c.dtype} D=${c.D} B=${c.B} Hq=${c.Hq} Hkv=${c.Hkv} Nq=${c.Nq} Nk=${c.Nk}`;

gpu('WGSL kernels match the float64 reference', () => {
  files.forEach((file, index) => {
    describe(file, () => {
      for (const c of casesFor(index, file)) {
        it(label(c), async () => {
          const ex = loadExample(join(EXAMPLES, file));
          const r = await diffCase(backend!, ex, c);
          const tol = TOLERANCE[c.dtype];
          if (process.env.ATTNC_REPORT) console.log(`${file} ${label(c)}: O ${r.maxAbsErrO.toExponential(2)} LSE ${r.maxAbsErrLse.toExponential(2)}`);
          expect(r.nanCount, 'NaNs in the kernel output').toBe(0);
          expect(r.maxAbsErrO, `max |O error| at ${JSON.stringify(r.worst)}`).toBeLessThanOrEqual(tol);
          expect(r.maxAbsErrLse, `max |LSE error| at ${JSON.stringify(r.worstLse)}`).toBeLessThanOrEqual(tol);
        }, 240_000);
      }
    });
  });
});

gpu('rows with no kept key', () => {
  // Rows 0..4 keep nothing (kv_idx + 5 <= q_idx fails for every key when q_idx < 5).
  const spec = loadSpecText('partial.attn', 'attention partial {\n  mask kv_idx + 5 <= q_idx\n}\n');
  for (const dtype of ['f32', 'f16'] as const) {
    it(`give O = 0 and LSE = -inf, never NaN (${dtype})`, async () => {
      const c: Case = { B: 1, Hq: 2, Hkv: 1, Nq: 40, Nk: 40, D: 32, dtype };
      const r = await diffCase(backend!, spec, c);
      expect(r.nanCount).toBe(0);
      for (let h = 0; h < 2; h++) {
        for (let row = 0; row < 5; row++) {
          const i = h * c.Nq + row;
          expect(r.got.lse[i]).toBe(-Infinity);
          expect(Array.from(r.got.o.subarray(i * c.D, (i + 1) * c.D)).every((x) => x === 0)).toBe(true);
        }
      }
      expect(r.maxAbsErrO).toBeLessThanOrEqual(TOLERANCE[dtype]);
      expect(r.maxAbsErrLse).toBeLessThanOrEqual(TOLERANCE[dtype]);
    });
  }
  it('every row masked: all O = 0, all LSE = -inf', async () => {
    const ex = loadExample(join(EXAMPLES, 'sliding_window.attn'));
    const r = await diffCase(backend!, ex, { B: 1, Hq: 1, Hkv: 1, Nq: 33, Nk: 70, D: 64, dtype: 'f32', params: { window: 0 } });
    expect(Array.from(r.got.lse).every((x) => x === -Infinity)).toBe(true);
    expect(Array.from(r.got.o).every((x) => x === 0)).toBe(true);
  });
});
