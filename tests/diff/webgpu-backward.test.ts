// Differential tests of the WGSL backward kernels on the WebGPU adapter (lavapipe in CI): for every example, the
// forward kernel's O and LSE feed the backward kernels, whose dQ, dK, dV are compared with the float64 backward
// reference (src/runtime/reference-backward.ts, whose d logit / d(q·k) comes from central differences of the
// AST, not from the IR derivative the kernels use). Skips with the reason when there is no adapter.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gradientError, TOLERANCE } from '../../src/runtime/compare.ts';
import { referenceBackward } from '../../src/runtime/reference-backward.ts';
import { defaultTables, mulberry32, normalSource, randomInputs } from '../../src/runtime/random.ts';
import { roundThrough } from '../../src/runtime/half.ts';
import { compileWgsl, compileWgslBackward, loadExample, loadSpecText, TEST_PARAMS, type Case, type Example } from './wgsl-harness.ts';
import { openTestBackend } from './wgsl-harness.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.attn')).sort();

const backend = await openTestBackend('tests/diff/webgpu-backward.test.ts');
const gpu = backend ? describe : describe.skip;
afterAll(() => backend?.dispose());

async function gradientCase(ex: Example, c: Case, seed = 5) {
  const shape = { B: c.B, Hq: c.Hq, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk, D: c.D };
  const round = (x: Float32Array) => (c.dtype === 'f16' ? roundThrough('f16', x) : x);
  const { q, k, v } = randomInputs(shape, seed);
  const [rq, rk, rv] = [q, k, v].map(round);
  const normal = normalSource(mulberry32(seed + 100));
  const dO = round(Float32Array.from({ length: c.B * c.Hq * c.Nq * c.D }, normal));
  const tables = defaultTables(ex.lowered.program.inputs, shape, seed);
  const params: Record<string, number> = {};
  for (const p of ex.lowered.program.params) params[p.name] = TEST_PARAMS[p.name] ?? p.default;
  const call = { ...shape, q: rq, k: rk, v: rv, params, tables };
  const fwd = await backend!.run(compileWgsl(ex, c.dtype, c.D, backend!.limits()), call);
  const kernel = compileWgslBackward(ex, c.dtype, c.D, backend!.limits());
  const got = await backend!.backward!(kernel, call, { o: fwd.o, lse: fwd.lse, dO });
  const want = referenceBackward(ex.block, { ...call }, dO);
  return { dq: gradientError(got.dq, want.dq), dk: gradientError(got.dk, want.dk), dv: gradientError(got.dv, want.dv) };
}

// Lavapipe's LLVM takes seconds per kernel: each example gets one f32 and one f16 kernel, and the f32 one several
// shapes: GQA 2 and 4, Nq < Nk, lengths that are not multiples of the tiles, a one-row call.
function casesFor(file: string): Case[] {
  // lavapipe compiles a D = 128 backward module in ~30 s: only the paper's spec and plain causal get one.
  const D16 = file === 'causal.attn' || file === 'scale_invariant.attn' ? 128 : 32;
  return [
    { B: 1, Hq: 4, Hkv: 2, Nq: 70, Nk: 70, D: 64, dtype: 'f32' },
    { B: 2, Hq: 4, Hkv: 1, Nq: 17, Nk: 90, D: 64, dtype: 'f32' },
    { B: 1, Hq: 2, Hkv: 2, Nq: 1, Nk: 45, D: 64, dtype: 'f32' },
    { B: 1, Hq: 2, Hkv: 1, Nq: 33, Nk: 33, D: D16, dtype: 'f16' },
  ];
}

const label = (c: Case) => `${c.dtype} D=${c.D} B=${c.B} Hq=${c.Hq} Hkv=${c.Hkv} Nq=${c.Nq} Nk=${c.Nk}`;

gpu('WGSL backward kernels match the float64 backward reference', () => {
  for (const file of files) {
    describe(file, () => {
      for (const c of casesFor(file)) {
        it(label(c), async () => {
          const r = await gradientCase(loadExample(join(EXAMPLES, file)), c);
          if (process.env.ATTNC_REPORT) console.log(`${file} ${label(c)}: dQ ${r.dq.err.toExponential(2)} dK ${r.dk.err.toExponential(2)} dV ${r.dv.err.toExponential(2)}`);
          for (const g of ['dq', 'dk', 'dv'] as const) {
            expect(r[g].nanCount, `non-finite values in ${g}`).toBe(0);
            expect(r[g].err, `${g}: max |error| / max(1, max |reference|)`).toBeLessThanOrEqual(TOLERANCE[c.dtype]);
          }
        }, 240_000);
      }
    });
  }
});

gpu('backward: rows with no kept key have zero gradient, never NaN', () => {
  it('mask kv_idx + 5 <= q_idx: the first five rows keep nothing', async () => {
    const ex = loadSpecText('partial.attn', 'attention partial {\n  score = score * 2 - 0.5\n  mask kv_idx + 5 <= q_idx\n}\n');
    const r = await gradientCase(ex, { B: 1, Hq: 2, Hkv: 1, Nq: 20, Nk: 20, D: 32, dtype: 'f32' });
    for (const g of ['dq', 'dk', 'dv'] as const) {
      expect(r[g].nanCount).toBe(0);
      expect(r[g].err).toBeLessThanOrEqual(TOLERANCE.f32);
    }
  }, 240_000);
});
