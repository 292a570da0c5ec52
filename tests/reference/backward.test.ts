// The backward reference against the forward reference: each gradient element is checked against central
// differences of sum(O * dO) computed by referenceAttention in float64, for every example, with GQA, a decode-like
// shape (Nq < Nk) and rows that lose every key.
import { describe, expect, it } from 'vitest';
import { referenceAttention, type ReferenceArgs } from '../../src/runtime/reference.ts';
import { referenceBackward } from '../../src/runtime/reference-backward.ts';
import { defaultTables, mulberry32, normalSource, randomInputs } from '../../src/runtime/random.ts';
import { loadExamples } from '../cuda/suite.ts';

const toF64 = (x: Float32Array) => Float64Array.from(x);

/** d sum(O * dO) / d x[i] by central differences of the forward reference. */
function numericGradient(block: Parameters<typeof referenceAttention>[0], args: ReferenceArgs, dO: Float64Array, which: 'q' | 'k' | 'v'): Float64Array {
  const x = args[which] as Float64Array;
  const out = new Float64Array(x.length);
  const loss = () => referenceAttention(block, args).o.reduce((s, o, i) => s + o * dO[i], 0);
  const h = 1e-5;
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    x[i] = keep + h; const up = loss();
    x[i] = keep - h; const down = loss();
    x[i] = keep;
    out[i] = (up - down) / (2 * h);
  }
  return out;
}

const maxAbs = (a: Float64Array, b: Float64Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

describe('referenceBackward', () => {
  const shapes = [
    { B: 1, Hq: 2, Hkv: 1, Nq: 5, Nk: 7, D: 4 },   // GQA, bottom-right aligned: the first rows have few keys
    { B: 2, Hq: 1, Hkv: 1, Nq: 6, Nk: 6, D: 8 },
  ];
  for (const spec of loadExamples()) {
    it(`${spec.name}: dQ, dK, dV match central differences of the forward reference`, () => {
      for (const [n, shape] of shapes.entries()) {
        const { q, k, v } = randomInputs(shape, 11 + n);
        const args: ReferenceArgs = { ...shape, q: toF64(q), k: toF64(k), v: toF64(v), tables: defaultTables(spec.lowered.program.inputs, shape, 3) };
        // Windows and prefixes of a few keys, so that these tiny shapes have masked pairs of every kind.
        args.params = Object.fromEntries(spec.lowered.program.params.map((p) => [p.name, p.type === 'i32' ? 3 : p.default]));
        const normal = normalSource(mulberry32(7 + n));
        const dO = Float64Array.from({ length: shape.B * shape.Hq * shape.Nq * shape.D }, normal);
        const got = referenceBackward(spec.block, args, dO);
        for (const which of ['q', 'k', 'v'] as const) {
          const want = numericGradient(spec.block, args, dO, which);
          const scale = Math.max(1, ...want.map(Math.abs));
          expect(maxAbs(got[`d${which}`], want) / scale, `d${which.toUpperCase()} of ${JSON.stringify(shape)}`).toBeLessThan(1e-6);
        }
      }
    });
  }

  it('a dO of the wrong size is refused', () => {
    const [spec] = loadExamples(['causal']);
    const shape = { B: 1, Hq: 1, Hkv: 1, Nq: 2, Nk: 2, D: 4 };
    const { q, k, v } = randomInputs(shape, 1);
    expect(() => referenceBackward(spec.block, { ...shape, q, k, v }, new Float64Array(3))).toThrow(/dO has 3 elements but the shape needs 8/);
  });
});

describe('referenceBackward: kinks', () => {
  it('counts weighted pairs at a kink of the logit (abs of a zero score) as ambiguous, and only those', async () => {
    const { parseSpec } = await import('../../src/compiler/syntax/parse.ts');
    const block = parseSpec('kink.attn', 'attention kink {\n  score = abs(score) - 1\n}\n').file.blocks[0];
    const shape = { B: 1, Hq: 1, Hkv: 1, Nq: 3, Nk: 4, D: 4 };
    const { q, k, v } = randomInputs(shape, 2);
    const dO = new Float64Array(12).fill(1);
    expect(referenceBackward(block, { ...shape, q, k, v }, dO).ambiguous).toBe(0);
    q.fill(0, 4, 8); // query row 1: every score is 0, at abs's kink
    expect(referenceBackward(block, { ...shape, q, k, v }, dO).ambiguous).toBe(4);
  });
});
