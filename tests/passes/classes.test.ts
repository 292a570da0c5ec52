import { describe, expect, it } from 'vitest';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { dependencyClasses, joinClass } from '../../src/compiler/passes/classes.ts';
import { analyzeProgram } from '../../src/compiler/passes/analyze.ts';
import { at, bin, block, input, let_, mask, score, v, EXAMPLES } from './ast-builder.ts';

describe('dependencyClasses', () => {
  it('joins: row+col = elem, diag+head = diag, diag+row = elem', () => {
    expect(joinClass('row', 'col')).toBe('elem');
    expect(joinClass('diag', 'head')).toBe('diag');
    expect(joinClass('diag', 'row')).toBe('elem');
    expect(joinClass('const', 'head')).toBe('head');
  });

  it('scale_invariant: the transform is diag, the logit elem', () => {
    const p = lowerBlock(EXAMPLES.scaleInvariant());
    const c = dependencyClasses([p.logit]);
    expect(c.get(p.logit)).toBe('elem');
    const a = analyzeProgram(p);
    expect(a.classOf.get(a.affine!.a)).toBe('diag');
    expect(a.classOf.get(a.affine!.c)).toBe('diag');
  });

  it('kv_idx - q_idx is diag; table reads take their index class', () => {
    const p = lowerBlock(block('x', input('doc', 'i32', 'kv_len'), input('s', 'f32', 'heads'),
      let_('d', bin('-', v('kv_idx'), v('q_idx'))), score(bin('+', v('d'), at('s', v('head')))),
      mask(bin('==', at('doc', v('q_idx')), at('doc', v('kv_idx'))))));
    const a = analyzeProgram(p);
    const byOp = (op: string, name?: string) => [...a.classOf].filter(([n]) => n.op === op && (!name || n.name === name)).map(([, c]) => c);
    expect(byOp('sub')).toContain('diag');
    expect(byOp('load', 's')).toEqual(['head']);
    expect(byOp('load', 'doc').sort()).toEqual(['col', 'row']);
    expect(a.classOf.get(p.mask)).toBe('elem');
  });
});
