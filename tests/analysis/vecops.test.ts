// The array loops of vecops.ts compute what ir/eval.ts applyOp computes in its
// f64 mode, op by op and type by type; and evalLanes agrees with evalNodes on
// the examples' logits and masks.
import { describe, expect, it } from 'vitest';
import { applyOp, evalNodes } from '../../src/compiler/ir/eval.ts';
import type { Op } from '../../src/compiler/ir/nodes.ts';
import type { ValueType } from '../../src/compiler/syntax/ast.ts';
import { vecOp } from '../../src/analysis/vecops.ts';
import { evalLanes } from '../../src/analysis/lanes.ts';
import { mulberry32 } from '../../src/runtime/random.ts';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { exampleBlock } from './helpers.ts';

const UNARY: Op[] = ['neg', 'not', 'cast', 'exp', 'exp2', 'log', 'log2', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'abs', 'sign', 'floor', 'ceil'];
const BINARY: Op[] = ['add', 'sub', 'mul', 'div', 'idiv', 'mod', 'min', 'max', 'pow', 'lt', 'le', 'gt', 'ge', 'eq', 'ne', 'and', 'or'];
const TYPES: ValueType[] = ['i32', 'f32', 'bool'];

function values(type: ValueType, n: number, seed: number): Float64Array {
  const u = mulberry32(seed);
  const special = type === 'i32' ? [0, 1, -1, 2147483647, -2147483648, 7, -7] : type === 'bool' ? [0, 1] : [0, -0, 1, -1, 0.5, 1e30, -1e30, Infinity, -Infinity, NaN];
  return Float64Array.from({ length: n }, (_, i) => {
    if (i < special.length) return special[i];
    if (type === 'bool') return u() < 0.5 ? 0 : 1;
    if (type === 'i32') return Math.floor((u() - 0.5) * 2 ** (1 + Math.floor(u() * 32))) | 0;
    return (u() - 0.5) * 10 ** Math.floor(u() * 8 - 3);
  });
}

const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

describe('vecOp', () => {
  it('matches applyOp in f64 mode for every op, result type and argument type', () => {
    let checked = 0;
    for (const op of [...UNARY, ...BINARY, 'select' as Op]) {
      for (const type of TYPES) for (const argType of TYPES) {
        const f = vecOp(op, type);
        expect(f, `${op}`).toBeDefined();
        const arity = op === 'select' ? 3 : BINARY.includes(op) ? 2 : 1;
        const types = op === 'select' ? ['bool' as ValueType, argType, argType] : Array(arity).fill(argType);
        const args = types.map((t, j) => values(t, 64, 17 * j + op.length));
        const out = new Float64Array(64);
        f!(out, args, 64);
        for (let i = 0; i < 64; i++) {
          const v = applyOp(op, type, args.map((a) => a[i]), 'f64', types[0]);
          const want = typeof v === 'boolean' ? Number(v) : v;
          if (!same(out[i], want)) throw new Error(`${op}:${type}(${types.join(',')}) at ${args.map((a) => a[i]).join(', ')}: ${out[i]} != ${want}`);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(5000);
  });
});

describe('evalLanes', () => {
  it('agrees with evalNodes (f64) on the logits and masks of the examples', () => {
    for (const name of ['scale_invariant', 'logn', 'softcap', 'sliding_window', 'prefix_lm', 'sinks_window']) {
      const p = lowerBlock(exampleBlock(name));
      const params = Object.fromEntries(p.params.map((x) => [x.name, x.default]));
      const qIdx = 5000;
      const kv = Float64Array.from([0, 1, 7, 255, 256, 1023, 1024, 4000, 4999, 5000]);
      const dot = Float64Array.from(kv, (_, i) => (i - 4) * 0.7);
      const sizes = { q_idx: qIdx, head: 0, batch: 0, q_len: qIdx + 1, kv_len: qIdx + 1, head_dim: 64 } as Record<string, number>;
      const lanes = evalLanes([p.logit, p.mask], {
        n: kv.length, tables: {},
        leaf: (node) => node.op === 'const' ? Number(node.value) : node.op === 'dot' ? dot : node.op === 'param' ? params[node.name!]
          : node.name === 'kv_idx' ? kv : sizes[node.name!],
      });
      kv.forEach((k, i) => {
        const env = { dot: dot[i], params, builtins: { ...sizes, kv_idx: k } };
        const v = evalNodes([p.logit, p.mask], env, { arith: 'f64' });
        expect(lanes.get(p.logit)![i], `${name} logit at kv ${k}`).toBe(v.get(p.logit));
        expect(lanes.get(p.mask)![i], `${name} mask at kv ${k}`).toBe(Number(v.get(p.mask)));
      });
    }
  });
});
