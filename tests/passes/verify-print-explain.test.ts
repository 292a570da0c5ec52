import { describe, expect, it } from 'vitest';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { analyzeProgram } from '../../src/compiler/passes/analyze.ts';
import { verifyNode, verifyProgram } from '../../src/compiler/ir/verify.ts';
import { printProgram } from '../../src/compiler/ir/print.ts';
import { IrFactory } from '../../src/compiler/ir/nodes.ts';
import { evalNode } from '../../src/compiler/ir/eval.ts';
import { explain, explainJson } from '../../src/compiler/explain.ts';
import { EXAMPLES } from './ast-builder.ts';

describe('verify', () => {
  it('accepts every lowered example, rejects ill-typed nodes and dot in masks', () => {
    for (const mk of Object.values(EXAMPLES)) verifyProgram(lowerBlock(mk()));
    const f = new IrFactory();
    expect(() => verifyNode(f.make('add', 'f32', [f.num(1, 'i32'), f.num(1, 'f32')]))).toThrow(/internal error/);
    const p = lowerBlock(EXAMPLES.causal());
    const bad = { ...p, mask: p.factory.make('lt', 'bool', [p.factory.dot(), p.factory.num(0, 'f32')]) };
    expect(() => verifyProgram(bad)).toThrow(/mask reads dot/);
  });
});

describe('eval', () => {
  it('is iterative: a 100k-deep chain does not overflow the stack', () => {
    const f = new IrFactory();
    let n = f.num(0, 'i32');
    for (let i = 0; i < 100000; i++) n = f.make('add', 'i32', [n, f.num(1, 'i32')]);
    expect(evalNode(n, {})).toBe(100000);
  });
});

describe('print and explain', () => {
  it('prints one line per node with classes', () => {
    const p = lowerBlock(EXAMPLES.causal());
    const text = printProgram(p, analyzeProgram(p).classOf);
    expect(text).toMatch(/^%\d+ = le bool %\d+, %\d+ +; elem$/m);
    expect(text).toContain('logit = %');
  });

  it('explains causal: a triangle of kept tiles', () => {
    const p = lowerBlock(EXAMPLES.causal());
    const a = analyzeProgram(p);
    const j = explainJson(p, a, { tile: { bm: 64, bn: 64 }, sample: { q_len: 256, kv_len: 256, params: {} } });
    expect(j.tiles.grid).toEqual(['~...', '#~..', '##~.', '###~']);
    expect(j.tiles.counts).toEqual({ all: 6, none: 6, partial: 4 });
    const text = explain(p, a, {});
    expect(text).toContain('a = 1.0 / sqrt(f32(head_dim))');
    expect(text).toContain('# all kept: 28');
    expect(j.kernelLogit2).toBeNull();
    const sc = lowerBlock(EXAMPLES.softcap());
    const scText = explain(sc, analyzeProgram(sc), {});
    expect(scText).toContain('not affine');
    // What the kernels evaluate: score / cap became a multiply by a hoisted reciprocal, log2(e) joined cap.
    expect(scText).toContain('  tanh(dot * (1.0 / sqrt(f32(head_dim)) * (1.0 / cap))) * (cap * 1.4426950216293335)\n');
  });

  it('prints f32 constants in exponent form without a stray .0', () => {
    const f = new IrFactory();
    const p = lowerBlock(EXAMPLES.causal());
    const big = f.make('mul', 'f32', [f.dot(), f.num(1e38, 'f32')]);
    expect(printProgram({ ...p, logit: big })).toMatch(/const f32 9\.999999680285692e\+37$/m);
    expect(printProgram({ ...p, logit: f.make('mul', 'f32', [f.dot(), f.num(3, 'f32')]) })).toMatch(/const f32 3\.0$/m);
  });
});
