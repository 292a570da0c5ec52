import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import { verifyProgram } from '../../src/compiler/ir/verify.ts';
import { exprString } from '../../src/compiler/ir/print.ts';
import { bin, block, int, let_, mask, param, real, scale, score, v, EXAMPLES } from './ast-builder.ts';
import { DECLS as decls, evalAst, genExpr, irEnv, randomEnv, rng } from './random-expr.ts';

const same = (a: unknown, b: unknown) => Object.is(a, b) || a === b;

describe('lowerBlock', () => {
  it('lowers causal to le(kv_idx, q_idx) and the default scale', () => {
    const p = lowerBlock(EXAMPLES.causal());
    verifyProgram(p);
    expect(exprString(p.mask)).toBe('kv_idx <= q_idx');
    expect(exprString(p.logit)).toBe('dot * (1.0 / sqrt(f32(head_dim)))');
  });

  it('no mask is const true; several masks are AND-ed', () => {
    expect(lowerBlock(block('x')).mask.value).toBe(true);
    const p = lowerBlock(block('x', mask(v('causal')), mask(bin('<', v('kv_idx'), int(3)))));
    expect(exprString(p.mask)).toBe('kv_idx <= q_idx && kv_idx < 3');
  });

  it('uses the LAST scale for the initial score, wherever it appears', () => {
    const p = lowerBlock(block('x', score(bin('+', v('score'), real(1))), scale(real(0.5)), scale(real(0.25))));
    expect(exprString(p.logit)).toBe('dot * 0.25 + 1.0');
  });

  it('lets are shared nodes; params have defaults; / and mixed ops cast i32 to f32', () => {
    const p = lowerBlock(block('x', param('n', 'f32', int(3)), let_('t', bin('-', v('q_idx'), v('kv_idx'))),
      score(bin('+', bin('/', v('t'), int(2)), bin('*', v('t'), v('n'))))));
    verifyProgram(p);
    expect(p.params).toEqual([{ name: 'n', type: 'f32', default: 3 }]);
    expect(exprString(p.logit)).toBe('f32(q_idx - kv_idx) / 2.0 + f32(q_idx - kv_idx) * n');
  });

  it('property: lowered (unfolded) IR in f64 mode agrees exactly with a direct f64 AST evaluation', () => {
    fc.assert(fc.property(fc.integer(), (seed) => {
      const r = rng(seed);
      const logitExpr = genExpr(r, 'f32', 5, { score: true, tables: true });
      const maskExpr = genExpr(r, 'bool', 4, { score: false, tables: true });
      const p = lowerBlock(block('r', ...decls, score(logitExpr), mask(maskExpr)), { fold: false });
      verifyProgram(p);
      for (let k = 0; k < 4; k++) {
        const env = randomEnv(r);
        expect(same(evalNode(p.logit, irEnv(env), { arith: 'f64' }), evalAst(logitExpr, env).v)).toBe(true);
        expect(evalNode(p.mask, irEnv(env), { arith: 'f64' })).toBe(evalAst(maskExpr, env).v);
      }
    }), { numRuns: 400 });
  });

  it('property: i32 expressions agree exactly, including wrapping', () => {
    fc.assert(fc.property(fc.integer(), (seed) => {
      const r = rng(seed);
      const e = genExpr(r, 'i32', 5, { score: false, tables: true, bigInts: true });
      const p = lowerBlock(block('r', ...decls, let_('x', e), mask(bin('==', v('x'), v('x')))), { fold: false });
      const x = p.mask.args[0];
      for (let k = 0; k < 4; k++) {
        const env = randomEnv(r);
        // f64 mode, as the reference: float subexpressions inside (an `if` condition, a cast) must not round
        // differently (seed -579671881: pow(6.5, -1.75 / 2147483647) is 1 in f32 and just below it in f64).
        // i32 arithmetic wraps the same in both modes.
        expect(evalNode(x, irEnv(env), { arith: 'f64' })).toBe(evalAst(e, env).v);
      }
    }), { numRuns: 300 });
  });
});
