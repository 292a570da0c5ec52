// A partial tile's mask is written with `&` and `|` (cstyle.ts eagerLogic): both sides always run, so
// the element's table read is not behind a branch. This checks the two things that makes safe and
// useful: the eager form means what the short-circuit form means (random boolean trees, evaluated over
// a grid of positions), and every example's masked element code is in fact branch-free C.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IrFactory, type Node } from '../../src/compiler/ir/nodes.ts';
import { emitValues, type LeafNames } from '../../src/compiler/render/cstyle.ts';
import { CUDA } from '../../src/compiler/render/lang-cuda.ts';
import { renderCuda } from '../../src/compiler/render/cuda.ts';
import { loadExamples } from './suite.ts';

const names: LeafNames = {
  leaf: (n) => (n.op === 'builtin' ? (n.name === 'q_idx' ? 'q' : 'k') : String(n.value)),
  load: () => { throw new Error('no tables here'); },
  loadRange: () => { throw new Error('no tables here'); },
};

// Boolean trees over comparisons of q_idx, kv_idx and small constants: the shape of a mask.
type Tree = { op: 'cmp'; rel: 'lt' | 'le' | 'eq' | 'ne'; a: string; b: string | number }
  | { op: 'and' | 'or'; l: Tree; r: Tree } | { op: 'not'; x: Tree };
const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
  t: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    fc.record({ op: fc.constant('cmp' as const), rel: fc.constantFrom('lt' as const, 'le' as const, 'eq' as const, 'ne' as const),
      a: fc.constantFrom('q_idx', 'kv_idx'), b: fc.oneof(fc.constantFrom('q_idx', 'kv_idx'), fc.integer({ min: -3, max: 6 })) }),
    fc.record({ op: fc.constantFrom('and' as const, 'or' as const), l: tie('t'), r: tie('t') }),
    fc.record({ op: fc.constant('not' as const), x: tie('t') })),
})).t;

function build(f: IrFactory, t: Tree): Node {
  switch (t.op) {
    case 'cmp': {
      const side = (s: string | number) => (typeof s === 'number' ? f.num(s, 'i32') : f.builtin(s as 'q_idx' | 'kv_idx'));
      return f.make(t.rel, 'bool', [side(t.a), side(t.b)]);
    }
    case 'not': return f.make('not', 'bool', [build(f, t.x)]);
    default: return f.make(t.op, 'bool', [build(f, t.l), build(f, t.r)]);
  }
}

// The rendered C is also JavaScript once its declarations lose their C types (&, |, !, ?: and the
// comparisons read the same); JS's `&` on booleans gives 0 or 1, as C's does.
function evaluator(root: Node, eager: boolean): { text: string; at: (q: number, k: number) => boolean } {
  const e = emitValues([root], CUDA, names, { prefix: 'v', eagerLogic: eager });
  const text = [...e.lines, e.values[0]].join('\n');
  const body = e.lines.map((l) => l.replace(/^const (bool|int|float) /, 'const ')).join('\n');
  const fn = new Function('q', 'k', `${body}\nreturn ${e.values[0]};`) as (q: number, k: number) => unknown;
  return { text, at: (q, k) => Boolean(fn(q, k)) };
}

describe('eager partial-tile masks', () => {
  it('mean what the short-circuit masks mean (random trees, q and kv over a grid)', () => {
    fc.assert(fc.property(tree, (t) => {
      const f = new IrFactory();
      const root = build(f, t);
      const eager = evaluator(root, true), lazy = evaluator(root, false);
      expect(eager.text).not.toMatch(/&&|\|\|/);
      for (let q = -1; q <= 6; q++) for (let k = -1; k <= 6; k++) {
        if (eager.at(q, k) !== lazy.at(q, k)) return false;
      }
      return true;
    }), { numRuns: 500 });
  });

  it('leave no short circuit in any example\'s masked element code (sm_80 and sm_90a, D=64 and 128)', () => {
    let checked = 0;
    for (const spec of loadExamples()) {
      for (const arch of ['sm_80', 'sm_90a'] as const) {
        for (const headDim of [64, 128]) {
          const src = renderCuda(spec.lowered, { dtype: 'bf16', headDim, hash: 't', version: 't', arch }).source;
          // the select with its keep, and the masked path's own temporaries (v_m<id>)
          const masked = src.split('\n').filter((l) => l.includes('const float lg2 =') || /const (bool|int|float) v_m\d+ =/.test(l));
          expect(masked.length, `${spec.name} ${arch} D=${headDim}: masked element code`).toBeGreaterThan(0);
          for (const l of masked) expect(l, `${spec.name} ${arch} D=${headDim}`).not.toMatch(/&&|\|\|/);
          checked += masked.length;
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});
