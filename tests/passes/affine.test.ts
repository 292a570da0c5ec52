import { describe, expect, it } from 'vitest';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { affineForm } from '../../src/compiler/passes/affine.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import { bin, block, call, iff, real, score, v, EXAMPLES } from './ast-builder.ts';

const env = (q: number, kv: number, dot = 0) => ({ dot, builtins: { q_idx: q, kv_idx: kv, head_dim: 64, head: 0 }, params: { tau: 10, cap: 50 }, tables: { slopes: [0.5] } });

describe('affineForm', () => {
  it('scale_invariant: a = sqrt(2l+1)*scale, c = -2l', () => {
    const p = lowerBlock(EXAMPLES.scaleInvariant());
    const f = affineForm(p.logit, p.factory)!;
    expect(f).not.toBeNull();
    for (const [q, kv] of [[0, 0], [100, 3], [5000, 20]]) {
      const l = Math.log1p((q - kv) / 10);
      expect(evalNode(f.a, env(q, kv))).toBeCloseTo(Math.sqrt(2 * l + 1) / 8, 6);
      expect(evalNode(f.c, env(q, kv))).toBeCloseTo(-2 * l, 5);
      expect(f.a.args.some((n) => n.op === 'dot')).toBe(false);
      const d = 1.75;
      expect(evalNode(p.logit, env(q, kv, d))).toBeCloseTo((evalNode(f.a, env(q, kv)) as number) * d + (evalNode(f.c, env(q, kv)) as number), 5);
    }
  });

  it('plain scaling: a = 1/sqrt(head_dim), c = const 0', () => {
    const p = lowerBlock(EXAMPLES.causal());
    const f = affineForm(p.logit, p.factory)!;
    expect(evalNode(f.a, env(0, 0))).toBe(0.125);
    expect(f.c.value).toBe(0);
  });

  it('alibi is affine; select with a dot-free condition is affine', () => {
    const p = lowerBlock(EXAMPLES.alibi());
    expect(evalNode(affineForm(p.logit, p.factory)!.c, env(10, 4))).toBe(-3);
    const s = lowerBlock(block('s', score(iff(bin('<', v('q_idx'), v('kv_idx')), bin('*', v('score'), real(2)), bin('-', v('score'), real(1))))));
    const f = affineForm(s.logit, s.factory)!;
    expect([evalNode(f.a, env(0, 1)), evalNode(f.c, env(0, 1))]).toEqual([0.25, 0]);
    expect([evalNode(f.a, env(1, 0)), evalNode(f.c, env(1, 0))]).toEqual([0.125, -1]);
  });

  it('softcap, score*score and selects on the score are not affine', () => {
    const p = lowerBlock(EXAMPLES.softcap());
    expect(affineForm(p.logit, p.factory)).toBeNull();
    const sq = lowerBlock(block('s', score(bin('*', v('score'), v('score')))));
    expect(affineForm(sq.logit, sq.factory)).toBeNull();
    const sel = lowerBlock(block('s', score(iff(bin('>', v('score'), real(0)), v('score'), real(0)))));
    expect(affineForm(sel.logit, sel.factory)).toBeNull();
    const e = lowerBlock(block('s', score(call('exp', v('score')))));
    expect(affineForm(e.logit, e.factory)).toBeNull();
  });
});
