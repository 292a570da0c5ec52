// The softmax's instruction diet in the Hopper kernel (cuda-mma.ts SoftmaxOptions, cuda-tiles.ts defaults):
// which logits fold their scale into the exp2 (a provably positive, block-uniform a; exp2-feed.ts isPositive),
// which kernels get which piece, and that the pieces show up in the source where chosen and nowhere else.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseSpec } from '../../src/compiler/syntax/parse.ts';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { analyzeProgram } from '../../src/compiler/passes/analyze.ts';
import { buildSpecCode } from '../../src/compiler/render/cuda-spec.ts';
import { isPositive } from '../../src/compiler/render/exp2-feed.ts';
import { renderCuda } from '../../src/compiler/render/cuda.ts';
import { chooseCudaTiles } from '../../src/compiler/schedule/cuda-tiles.ts';
import { IrFactory, type Node } from '../../src/compiler/ir/nodes.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import type { LoweredKernel } from '../../src/compiler/ir/program.ts';
import { loadExamples } from './suite.ts';

function lowered(src: string): LoweredKernel {
  const { file } = parseSpec('t.attn', src);
  const program = lowerBlock(file!.blocks[0]);
  return { program, analysis: analyzeProgram(program) };
}
const cuda = (k: LoweredKernel, headDim: number, tiles?: object) =>
  renderCuda(k, { dtype: 'bf16', headDim, hash: 'h', version: 'v', arch: 'sm_90a', tiles }).source;

describe('isPositive', () => {
  const f = new IrFactory();
  const hd = f.make('builtin', 'i32', [], { name: 'head_dim' });
  const inv = f.make('div', 'f32', [f.num(1, 'f32'), f.make('sqrt', 'f32', [f.make('cast', 'f32', [hd])])]);
  it('1 / sqrt(head_dim) and its products with positive literals are; zero, negatives, params, exp and tiny products are not', () => {
    expect(isPositive(inv)).toBe(true);
    expect(isPositive(f.make('mul', 'f32', [inv, f.num(1.4426950408889634, 'f32')]))).toBe(true);
    expect(isPositive(f.num(0, 'f32'))).toBe(false);
    expect(isPositive(f.num(-2, 'f32'))).toBe(false);
    expect(isPositive(f.make('param', 'f32', [], { name: 'scale' }))).toBe(false);
    expect(isPositive(f.make('exp', 'f32', [f.num(1, 'f32')]))).toBe(false);
    // a product that may flush to zero in f32
    expect(isPositive(f.make('mul', 'f32', [f.num(1e-20, 'f32'), f.num(1e-20, 'f32')]))).toBe(false);
    // a quotient that overflows f32 to +inf, whose rsqrt is then 0 (found by the property below)
    expect(isPositive(f.make('rsqrt', 'f32', [f.make('div', 'f32', [f.num(1.4426950408889634, 'f32'), f.num(1e-40, 'f32')])]))).toBe(false);
    expect(isPositive(f.make('rsqrt', 'f32', [f.make('div', 'f32', [f.num(1, 'f32'), f.num(1e-20, 'f32')])]))).toBe(true);
    expect(isPositive(f.make('select', 'f32', [f.make('param', 'bool', [], { name: 'c' }), inv, f.num(-1, 'f32')]))).toBe(false);
  });
});

// Random f32 expressions over head_dim, a param and literals (zero, negative, tiny, huge, NaN, inf among them).
type Tree = { op: string; value?: number; kids: Tree[] };
const treeArb: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
  t: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(0, -1, 0.5, 3, 1e-20, 1e-40, 1e30, Infinity, NaN, 1.4426950408889634).map((value): Tree => ({ op: 'const', value, kids: [] })),
    fc.constant<Tree>({ op: 'head_dim', kids: [] }),
    fc.constant<Tree>({ op: 'param', kids: [] }),
    fc.tuple(fc.constantFrom('sqrt', 'rsqrt', 'exp', 'neg'), tie('t')).map(([op, a]): Tree => ({ op, kids: [a] })),
    fc.tuple(fc.constantFrom('add', 'sub', 'mul', 'div', 'min', 'max', 'select'), tie('t'), tie('t')).map(([op, a, b]): Tree => ({ op, kids: [a, b] })),
  ),
})).t;

function build(t: Tree, f: IrFactory): Node {
  switch (t.op) {
    case 'const': return f.num(t.value!, 'f32');
    case 'head_dim': return f.make('cast', 'f32', [f.make('builtin', 'i32', [], { name: 'head_dim' })]);
    case 'param': return f.make('param', 'f32', [], { name: 'p' });
    case 'select': {
      const cond = f.make('gt', 'bool', [f.make('param', 'f32', [], { name: 'p' }), f.num(0, 'f32')]);
      return f.make('select', 'f32', [cond, build(t.kids[0], f), build(t.kids[1], f)]);
    }
    default: return f.make(t.op as 'add', 'f32', t.kids.map((k) => build(k, f)));
  }
}

describe('isPositive: sound on random expressions', () => {
  it('where it says x > 0, x evaluates (in f32) to more than 0 for any head_dim and param', () => {
    fc.assert(fc.property(treeArb, fc.integer({ min: 1, max: 65536 }), fc.double({ noNaN: false }), (t, hd, p) => {
      const f = new IrFactory();
      const x = build(t, f);
      if (!isPositive(x)) return true;
      const v = evalNode(x, { builtins: { head_dim: hd }, params: { p } }) as number;
      return v > 0;
    }), { numRuns: 3000 });
  });
  it('and it is not vacuous: it accepts some of them', () => {
    let accepted = 0;
    fc.assert(fc.property(treeArb, (t) => { if (isPositive(build(t, new IrFactory()))) accepted++; return true; }), { numRuns: 1000 });
    expect(accepted).toBeGreaterThan(50);
  });
});

describe('foldedScale: the logits whose scale folds into the exp2', () => {
  it('mask-only examples fold; a per-element offset, a non-affine logit or per-diagonal factors do not', () => {
    const folds = Object.fromEntries(loadExamples().map((s) => [s.name, buildSpecCode(s.lowered).foldedScale !== null]));
    expect(folds).toMatchObject({ causal: true, sliding_window: true, document: true, alibi: false, softcap: false, scale_invariant: false });
  });
  it('a runtime scale folds only where its sign is known', () => {
    const byParam = lowered('attention p { param scale = 0.5\n score = score * scale\n mask causal }');
    expect(buildSpecCode(byParam).foldedScale).toBeNull();
    const byConst = lowered('attention c { score = score * 0.25 + 3.0\n mask causal }');
    expect(buildSpecCode(byConst).foldedScale).not.toBeNull();
    const negative = lowered('attention n { score = score * (0.0 - 0.25)\n mask causal }');
    expect(buildSpecCode(negative).foldedScale).toBeNull();
  });
});

describe('cuda tiles: the diet where it was measured to pay', () => {
  const hopper = (headDim: number, hints = {}) => chooseCudaTiles('bf16', headDim, {}, 'sm_90a', hints);
  it('fold where the spec allows it, except beside a table-scanning producer; lazy rescale at D=128; two chains at D=64 where nothing folds', () => {
    const pick = (t: ReturnType<typeof hopper>) => [t.foldScale, t.lazyRescale, t.twoChains];
    expect(pick(hopper(64, { foldedScale: true }))).toEqual([true, false, false]);
    expect(pick(hopper(64, { foldedScale: false }))).toEqual([false, false, true]);
    // asked for, the fold still needs a spec that allows it
    expect(chooseCudaTiles('bf16', 64, { foldScale: true }, 'sm_90a', { foldedScale: false }).foldScale).toBe(false);
    expect(pick(hopper(64, { foldedScale: true, tableTileTest: true }))).toEqual([false, false, true]);
    expect(pick(hopper(128, { foldedScale: true }))).toEqual([true, true, false]);
    expect(pick(chooseCudaTiles('bf16', 64, {}, 'sm_80', { foldedScale: true }))).toEqual([false, false, false]);
  });
  it('the source carries each piece where chosen', () => {
    const [causal, alibi] = ['causal', 'alibi'].map((name) => loadExamples([name])[0].lowered);
    const raw = /raw dot products: the scale is folded/;
    const lazy = /mx > m_i\[i\] \+ 8\.f/;
    const chains = /rs1 \+=/;
    const c64 = cuda(causal, 64), c128 = cuda(causal, 128), a64 = cuda(alibi, 64);
    expect([raw.test(c64), lazy.test(c64), chains.test(c64)]).toEqual([true, false, false]);
    expect([raw.test(c128), lazy.test(c128), chains.test(c128)]).toEqual([true, true, false]);
    expect([raw.test(a64), lazy.test(a64), chains.test(a64)]).toEqual([false, false, true]);
    // turned off, causal multiplies the scale in the element loop again and takes the max over the logits
    const off = cuda(causal, 64, { foldScale: false });
    expect(raw.test(off)).toBe(false);
    expect(off).toMatch(/fmaf\(hv_\d+, dotv, 0\.0f\)/);
    expect(c64).toMatch(/attnc_ex2\(fmaf\(s\[mi\]\[n\]\[2 \* h\], hv_\d+, off\)\)/);
  });
});

// Not the softmax, but the same kernel: the persistent producer pastes its tile classification once per item.
describe('persistent producer: the document tile window', () => {
  it('its buffer index is declared before the item loop and carried across items (a racecheck finding)', () => {
    const main = cuda(loadExamples(['document'])[0].lowered, 64);  // the D=64 source holds the persistent kernel only
    const decl = main.indexOf('int tw_buf = 1;'), loop = main.indexOf('for (int round = 0, item = item0;');
    expect(decl).toBeGreaterThan(0);
    expect(decl).toBeLessThan(loop);
    expect(main.match(/tw_buf = 1/g)).toHaveLength(1);
  });
});
