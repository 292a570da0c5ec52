import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { derivative, logitDerivative } from '../../src/compiler/passes/derivative.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import { topoOrder, type Node } from '../../src/compiler/ir/nodes.ts';
import { exprString } from '../../src/compiler/ir/print.ts';
import { block, mask, score } from './ast-builder.ts';
import { DECLS as decls, genExpr, irEnv, randomEnv, rng, type AstEnv } from './random-expr.ts';
import { loadExamples } from '../cuda/suite.ts';

/**
 * d logit / d dot by central differences of the IR in float64 (step h and h / 2), or null where the quotient does
 * not stand for the derivative:
 * - the two steps disagree (a kink, a jump or a pole within h);
 * - a kink sits exactly at dot (e.g. min(|x|, sign(x)) at x = 1, or at dot = 0): both central steps then give the
 *   mean of the two slopes and agree, but the gap between the one-sided quotients stays as the step halves, where
 *   on a smooth logit it halves with it (it is about h f'');
 * - a step function's argument moves by a unit within h (staircaseWithin);
 * - a min, max, abs or comparison sits at its tie (tieAt): the derivative picks one side's slope there, a choice
 *   that the quotient need not share (3 - max(min(-x, x), 0.75 x) is smooth at x = 0, both its inner ties not);
 * - a value is not finite, or f64 rounding could exceed the tolerance: |v| 2^-52 / h for the largest value v the
 *   logit computes on the way (f32(2^31 - 1) - f32(window) cancels to a small logit, not to small rounding).
 */
function finiteDifference(logit: Parameters<typeof evalNode>[0], env: AstEnv): number | null {
  const at = (dot: number) => evalNode(logit, irEnv({ ...env, dot }), { arith: 'f64' }) as number;
  const central = (h: number) => (at(env.dot + h) - at(env.dot - h)) / (2 * h);
  const h = 1e-4 * Math.max(1, Math.abs(env.dot));
  const coarse = central(h), fine = central(h / 2);
  if (!Number.isFinite(coarse) || !Number.isFinite(fine)) return null;
  const scale = Math.max(1, Math.abs(fine));
  if (Math.abs(coarse - fine) > 1e-6 * scale) return null;
  const gap = (step: number) => (at(env.dot + step) - at(env.dot)) / step - (at(env.dot) - at(env.dot - step)) / step;
  const gapH = gap(h), gapHalf = gap(h / 2);
  if (Math.abs(gapHalf) > 1e-7 * scale && Math.abs(gapHalf) > 0.75 * Math.abs(gapH)) return null;
  if (staircaseWithin(logit, env, h) || tieAt(logit, env)) return null;
  const largest = Math.max(...topoOrder([logit]).map((n) => Math.abs(Number(evalNode(n, irEnv(env), { arith: 'f64' })))).filter(Number.isFinite));
  if ((largest * 2 ** -52) / (h / 2) > 1e-7 * scale) return null;
  return fine;
}

/**
 * Whether a step function of a float in the logit (floor, ceil, a float-to-int cast) has its argument move by a
 * unit or more within dot ± h: the quotients then average a staircase finer than h (ceil(-window / x) with
 * window = 2^31 - 1 steps every 1e-9 or so), which no pair of steps can tell from a slope, while its derivative is 0.
 */
function staircaseWithin(logit: Node, env: AstEnv, h: number): boolean {
  const at = (n: Node, dot: number) => evalNode(n, irEnv({ ...env, dot }), { arith: 'f64' }) as number;
  return topoOrder([logit]).some((n) => {
    const step = n.op === 'floor' || n.op === 'ceil' || (n.op === 'cast' && n.type === 'i32' && n.args[0].type === 'f32');
    return step && !(Math.abs(at(n.args[0], env.dot + h) - at(n.args[0], env.dot - h)) < 1);
  });
}

/** Whether a min, max or comparison of two floats has equal sides at the point, or an abs or sign a zero argument. */
function tieAt(logit: Node, env: AstEnv): boolean {
  const v = (n: Node) => evalNode(n, irEnv(env), { arith: 'f64' });
  const ties = new Set(['min', 'max', 'lt', 'le', 'gt', 'ge', 'eq', 'ne']);
  return topoOrder([logit]).some((n) => {
    if (n.args[0]?.type !== 'f32') return false;
    if (ties.has(n.op)) return v(n.args[0]) === v(n.args[1]);
    return (n.op === 'abs' || n.op === 'sign') && v(n.args[0]) === 0;
  });
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
    }), {
      numRuns: 600,
      // Seeds that once failed (a kink exactly at dot, a staircase finer than h, cancellation of 2^31, a tie), first.
      examples: [[-1003211572], [206857488], [-810606350], [1970496544], [-585050883]],
    });
    // The property must have compared a fair share of the points, or it proves little.
    expect(compared).toBeGreaterThan(800);
  });
});
