import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Folder, foldNode } from '../../src/compiler/passes/fold.ts';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import { IrFactory } from '../../src/compiler/ir/nodes.ts';
import { verifyProgram } from '../../src/compiler/ir/verify.ts';
import { block, mask, score } from './ast-builder.ts';
import { DECLS, genExpr, irEnv, randomEnv, rng } from './random-expr.ts';

describe('fold', () => {
  const f = new IrFactory();
  const b = new Folder(f);
  const x = f.param('x', 'f32'), i = f.param('i', 'i32');

  it('folds constants with exact f32 and i32 semantics', () => {
    expect(b.add(f.num(0.1, 'f32'), f.num(0.2, 'f32')).value).toBe(Math.fround(Math.fround(0.1) + Math.fround(0.2)));
    expect(b.add(f.num(2 ** 31 - 1, 'i32'), f.num(1, 'i32')).value).toBe(-(2 ** 31));
    expect(b.mul(f.num(65536, 'i32'), f.num(65536, 'i32')).value).toBe(0);
    expect(b.bin('idiv', f.num(-7, 'i32'), f.num(2, 'i32')).value).toBe(-3);
    expect(b.bin('mod', f.num(-7, 'i32'), f.num(2, 'i32')).value).toBe(-1);
    expect(b.bin('mod', f.num(7, 'i32'), f.num(0, 'i32')).value).toBe(0);
    expect(b.bin('idiv', f.num(7, 'i32'), f.num(0, 'i32')).value).toBe(0);
    expect(b.cast('f32', f.num(16777217, 'i32')).value).toBe(16777216);
  });

  it('does not fold non-finite f32 results', () => {
    expect(b.div(f.num(1, 'f32'), f.num(0, 'f32')).op).toBe('div');
  });

  it('applies only exact identities', () => {
    expect(b.mul(x, f.num(1, 'f32'))).toBe(x);
    expect(b.mul(f.num(1, 'f32'), x)).toBe(x);
    expect(b.add(i, f.num(0, 'i32'))).toBe(i);
    expect(b.add(x, f.num(-0, 'f32'))).toBe(x);
    expect(b.add(x, f.num(0, 'f32')).op).toBe('add'); // x may be -0
    expect(b.sub(x, f.num(0, 'f32'))).toBe(x);
    expect(b.neg(b.neg(x))).toBe(x);
    expect(b.mul(i, f.num(0, 'i32')).value).toBe(0);
    expect(b.mul(x, f.num(0, 'f32')).op).toBe('mul'); // inf * 0 is NaN
    const c = b.bin('lt', i, f.num(3, 'i32'));
    expect(b.not(b.not(c))).toBe(c);
    expect(b.select(f.bool(true), x, b.neg(x))).toBe(x);
    expect(b.select(c, x, x)).toBe(x);
    expect(b.and(f.bool(true), c)).toBe(c);
    expect(b.or(f.bool(false), c)).toBe(c);
    expect(b.and(f.bool(false), c).value).toBe(false);
    expect(b.bin('eq', x, x).op).toBe('eq'); // NaN != NaN
    expect(b.bin('eq', i, i).value).toBe(true);
  });

  it('property: folding never changes the f32-mode value', () => {
    fc.assert(fc.property(fc.integer(), (seed) => {
      const r = rng(seed);
      const logitExpr = genExpr(r, 'f32', 5, { score: true, tables: true });
      const maskExpr = genExpr(r, 'bool', 4, { score: false, tables: true, bigInts: true });
      const spec = block('r', ...DECLS, score(logitExpr), mask(maskExpr));
      const raw = lowerBlock(spec, { fold: false }), folded = lowerBlock(spec);
      verifyProgram(folded);
      const refolded = foldNode(raw.logit, raw.factory);
      for (let k = 0; k < 4; k++) {
        const env = irEnv(randomEnv(r));
        const want = evalNode(raw.logit, env);
        expect(Object.is(evalNode(folded.logit, env), want)).toBe(true);
        expect(Object.is(evalNode(refolded, env), want)).toBe(true);
        expect(evalNode(folded.mask, env)).toBe(evalNode(raw.mask, env));
      }
    }), { numRuns: 500 });
  });
});
