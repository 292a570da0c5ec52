import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { classifyTile, tileTest } from '../../src/compiler/passes/mask-intervals.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import { exprString } from '../../src/compiler/ir/print.ts';
import { verifyNodes } from '../../src/compiler/ir/verify.ts';
import { block, mask, EXAMPLES } from './ast-builder.ts';
import { DECLS, genExpr, rng } from './random-expr.ts';

describe('tileTest', () => {
  it('causal gives kv_lo <= q_hi / kv_hi > q_lo', () => {
    const p = lowerBlock(EXAMPLES.causal());
    const t = tileTest(p.mask, p.factory);
    expect(exprString(t.canBeTrue)).toBe('kv_lo <= q_hi');
    expect(exprString(t.canBeFalse)).toBe('kv_hi > q_lo');
  });

  it('no mask gives const true / const false', () => {
    const p = lowerBlock(block('x'));
    const t = tileTest(p.mask, p.factory);
    expect([t.canBeTrue.value, t.canBeFalse.value]).toEqual([true, false]);
  });

  it('table masks stay partial except for the causal part', () => {
    const p = lowerBlock(EXAMPLES.document());
    const t = tileTest(p.mask, p.factory);
    expect(exprString(t.canBeTrue)).toBe('kv_lo <= q_hi');
    expect(t.canBeFalse.value).toBe(true);
  });

  it('sliding window classifies tiles', () => {
    const p = lowerBlock(EXAMPLES.slidingWindow());
    const t = tileTest(p.mask, p.factory);
    const env = (q: number, k: number) => ({ builtins: { q_lo: q, q_hi: q + 63, kv_lo: k, kv_hi: k + 63 }, params: { window: 128 } });
    expect(classifyTile(t, env(64, 0))).toBe('all');
    expect(classifyTile(t, env(0, 64))).toBe('none');
    expect(classifyTile(t, env(256, 0))).toBe('none');
    expect(classifyTile(t, env(128, 0))).toBe('partial');
  });

  it('property: sound on random masks and tiles (none => nothing kept, all => everything kept)', () => {
    let decided = 0;
    fc.assert(fc.property(fc.integer(), (seed) => {
      const r = rng(seed);
      const i = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
      const m = genExpr(r, 'bool', 4, { score: false, tables: r() < 0.3, bigInts: r() < 0.3 });
      const p = lowerBlock(block('r', ...DECLS, mask(m)));
      const t = tileTest(p.mask, p.factory);
      verifyNodes([t.canBeTrue, t.canBeFalse]);
      for (let k = 0; k < 6; k++) {
        const q_lo = i(-6, 40), kv_lo = i(-6, 40), q_hi = q_lo + i(0, 6), kv_hi = kv_lo + i(0, 6);
        const window = [i(-5, 50), 2 ** 31 - 1, -(2 ** 31), 2 ** 30, 46341][i(0, 4)];
        const params = { window, tau: i(1, 40) / 4 };
        const head = i(0, 3), sizes = { head, batch: 0, head_dim: 64, q_len: 48, kv_len: 48 };
        const tables = { ti: Array.from({ length: 8 }, () => i(-10, 10)), tf: Array.from({ length: 8 }, () => i(-20, 20) / 4) };
        const cls = classifyTile(t, { builtins: { ...sizes, q_lo, q_hi, kv_lo, kv_hi }, params });
        if (cls === 'partial') continue;
        decided++;
        for (let q = q_lo; q <= q_hi; q++) {
          for (let kv = kv_lo; kv <= kv_hi; kv++) {
            const kept = evalNode(p.mask, { builtins: { ...sizes, q_idx: q, kv_idx: kv }, params, tables });
            expect(kept, `${cls} tile q ${q_lo}..${q_hi} kv ${kv_lo}..${kv_hi} window ${window}: ${exprString(p.mask)} at (${q}, ${kv})`).toBe(cls === 'all');
          }
        }
      }
    }), { numRuns: 1500 });
    expect(decided).toBeGreaterThan(500);
  });
});
