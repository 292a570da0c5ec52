import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { classifyTile, liveQueriesEnd, queryTileLoads, tileTest } from '../../src/compiler/passes/mask-intervals.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import { topoOrder } from '../../src/compiler/ir/nodes.ts';
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

  it('table masks scan the table over the tile ranges (load_min / load_max)', () => {
    const p = lowerBlock(EXAMPLES.document());
    const t = tileTest(p.mask, p.factory);
    expect(exprString(t.canBeTrue)).toBe(
      'kv_lo <= q_hi && (min(doc[q_lo..q_hi]) <= max(doc[kv_lo..kv_hi]) && min(doc[kv_lo..kv_hi]) <= max(doc[q_lo..q_hi]))');
    expect(queryTileLoads(t).map((n) => exprString(n))).toEqual(['min(doc[q_lo..q_hi])', 'max(doc[q_lo..q_hi])']);
  });

  it('document masks with sorted doc ids: other-document tiles are none, in-document tiles below the diagonal all', () => {
    const p = lowerBlock(EXAMPLES.document());
    const t = tileTest(p.mask, p.factory);
    // doc 0 on 0..99, doc 1 on 100..199, doc 2 on 200..255.
    const doc = Int32Array.from({ length: 256 }, (_, i) => (i < 100 ? 0 : i < 200 ? 1 : 2));
    const env = (q: number, k: number, n = 32) => ({
      builtins: { q_lo: q, q_hi: q + n - 1, kv_lo: k, kv_hi: k + n - 1, q_len: 256, kv_len: 256, head: 0, batch: 0, head_dim: 64 },
      params: {}, tables: { doc },
    });
    expect(classifyTile(t, env(160, 0))).toBe('none');    // q in doc 1, kv in doc 0 (below the diagonal)
    expect(classifyTile(t, env(64, 0))).toBe('all');      // q and kv in doc 0, kv_hi < q_lo
    expect(classifyTile(t, env(232, 200, 24))).toBe('all'); // inside doc 2, below the diagonal
    expect(classifyTile(t, env(96, 64))).toBe('partial'); // q straddles docs 0 and 1
    expect(classifyTile(t, env(32, 32))).toBe('partial'); // on the diagonal
    expect(classifyTile(t, env(0, 160))).toBe('none');    // above the diagonal (causal part)
    // Indices past the table are clamped, as `load` does.
    expect(classifyTile(t, env(300, 232, 24))).toBe('all');
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

  it("a window's live queries end before the last (the dK/dV walk's dead items); causal's and prefix-LM's do not", () => {
    const ends = (b: ReturnType<typeof block>) => { const p = lowerBlock(b); return liveQueriesEnd(tileTest(p.mask, p.factory)); };
    expect(ends(EXAMPLES.slidingWindow())).toBe(true);
    expect(ends(EXAMPLES.causal())).toBe(false);
    expect(ends(block('x'))).toBe(false);
    expect(ends(EXAMPLES.prefixLm())).toBe(false);
    expect(ends(EXAMPLES.scaleInvariant())).toBe(false);
  });

  it('property: sound on random masks and tiles (none => nothing kept, all => everything kept)', () => {
    let decided = 0, viaLoads = 0;
    fc.assert(fc.property(fc.integer(), (seed) => {
      const r = rng(seed);
      const i = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
      const m = genExpr(r, 'bool', 4, { score: false, tables: r() < 0.3, bigInts: r() < 0.3 });
      const p = lowerBlock(block('r', ...DECLS, mask(m)));
      const t = tileTest(p.mask, p.factory);
      verifyNodes([t.canBeTrue, t.canBeFalse]);
      const scans = topoOrder([t.canBeTrue, t.canBeFalse]).some((n) => n.op === 'load_min' || n.op === 'load_max');
      for (let k = 0; k < 6; k++) {
        const q_lo = i(-6, 40), kv_lo = i(-6, 40), q_hi = q_lo + i(0, 6), kv_hi = kv_lo + i(0, 6);
        const window = [i(-5, 50), 2 ** 31 - 1, -(2 ** 31), 2 ** 30, 46341][i(0, 4)];
        const params = { window, tau: i(1, 40) / 4 };
        const head = i(0, 3), sizes = { head, batch: 0, head_dim: 64, q_len: 48, kv_len: 48 };
        // i32 tables: random, few distinct values, or sorted document ids (long equal runs).
        const kind = i(0, 2);
        const ti = kind === 0 ? Array.from({ length: 8 }, () => i(-10, 10))
          : kind === 1 ? Array.from({ length: 8 }, () => i(0, 1))
          : Array.from({ length: 8 }, () => i(0, 2)).sort((u, w) => u - w);
        const tables = { ti, tf: Array.from({ length: 8 }, () => i(-20, 20) / 4) };
        const cls = classifyTile(t, { builtins: { ...sizes, q_lo, q_hi, kv_lo, kv_hi }, params, tables });
        if (cls === 'partial') continue;
        decided++;
        if (scans) viaLoads++;
        for (let q = q_lo; q <= q_hi; q++) {
          for (let kv = kv_lo; kv <= kv_hi; kv++) {
            const kept = evalNode(p.mask, { builtins: { ...sizes, q_idx: q, kv_idx: kv }, params, tables });
            expect(kept, `${cls} tile q ${q_lo}..${q_hi} kv ${kv_lo}..${kv_hi} window ${window}: ${exprString(p.mask)} at (${q}, ${kv})`).toBe(cls === 'all');
          }
        }
      }
    }), { numRuns: 1500 });
    expect(decided).toBeGreaterThan(500);
    expect(viaLoads).toBeGreaterThan(100); // tiles decided by tile tests that scan tables
  });
});
