import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { derivative, logitDerivative } from '../../src/compiler/passes/derivative.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import { exprString } from '../../src/compiler/ir/print.ts';
import { block, mask, score } from './ast-builder.ts';
import { DECLS as decls, genExpr, irEnv, randomEnv, rng, type AstEnv } from './random-expr.ts';
import { loadExamples } from '../cuda/suite.ts';

/**
 * d logit / d dot by central differences of the IR in float64 (step h and h / 2), or null where the two steps
 * disagree (a kink, a jump or a pole within h: the difference quotient does not stand for the derivative there)
 * or a value is not finite, or where f64 rounding of the values (|f| * 2^-52 / h) could be larger than the tolerance.
 */
function finiteDifference(logit: Parameters<typeof evalNode>[0], env: AstEnv): number | null {
  const at = (dot: number) => evalNode(logit, irEnv({ ...env, dot }), { arith: 'f64' }) as number;
  const central = (h: number) => (at(env.dot + h) - at(env.dot - h)) / (2 * h);
  const h = 1e-4 * Math.max(1, Math.abs(env.dot));
  const coarse = central(h), fine = central(h / 2);
  if (!Number.isFinite(coarse) || !Number.isFinite(fine)) return null;
  const scale = Math.max(1, Math.abs(fine));
  if (Math.abs(coarse - fine) > 1e-6 * scale) return null;
  if ((Math.abs(at(env.dot)) * 2 ** -52) / (h / 2) > 1e-7 * scale) return null;
  return fine;
}

describe('logitDerivative: d logit / d dot as IR', () => {
  it('examples: the forms a reader expects', () => {
    const ex = Object.fromEntries(loadExamples(['causal', 'scale_invariant', 'softcap', 'alibi', 'document']).map((s) => [s.name, s.lowered.program]));
    expect(exprString(logitDerivative(ex.causal))).toBe('1.0 / sqrt(f32(head_dim))');
    // Affine logits: the derivative is the slope and reads no dot product.
    for (const name of ['scale_invariant', 'alibi', 'document']) {
      expect(exprString(logitDerivative(ex[name]))).not.toMatch(/\bdot\b/);
    }
    // softcap: cap * tanh(s / cap) has slope 1 - tanh^2, times the scale.
    expect(exprString(logitDerivative(ex.softcap))).toMatch(/tanh/);
  });

  it('a logit that does not read the score has derivative exactly 0', () => {
    const p = lowerBlock(block('x', ...decls, score(genExpr(rng(5), 'f32', 3, { score: false, tables: true }))));
    expect(derivative(p.logit, p.factory)).toBeNull();
    expect(logitDerivative(p).value).toBe(0);
  });

  it('property: agrees with central differences of the IR in float64 wherever the logit is smooth', () => {
    let compared = 0;
    fc.assert(fc.property(fc.integer(), (seed) => {
      const r = rng(seed);
      const p = lowerBlock(block('r', ...decls, score(genExpr(r, 'f32', 5, { score: true, tables: true })), mask(genExpr(r, 'bool', 2, { score: false, tables: false }))));
      const g = logitDerivative(p);
      for (let k = 0; k < 4; k++) {
        const env = randomEnv(r);
        const fd = finiteDifference(p.logit, env);
        const exact = evalNode(g, irEnv(env), { arith: 'f64' }) as number;
        if (fd === null || !Number.isFinite(exact)) continue;
        compared++;
        expect(Math.abs(exact - fd)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(fd)));
      }
    }), { numRuns: 600 });
    // The property must have compared a fair share of the points, or it proves little.
    expect(compared).toBeGreaterThan(800);
  });
});
