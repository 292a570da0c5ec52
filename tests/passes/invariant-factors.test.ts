import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hoistInvariantFactors } from '../../src/compiler/passes/invariant-factors.ts';
import { evalNode, type EvalEnv } from '../../src/compiler/ir/eval.ts';
import { IrFactory, topoOrder, type Node } from '../../src/compiler/ir/nodes.ts';
import { rng } from './random-expr.ts';

const f = new IrFactory();
const dot = f.dot(), cap = f.param('cap', 'f32'), tau = f.param('tau', 'f32');
const dist = f.make('cast', 'f32', [f.make('sub', 'i32', [f.builtin('q_idx'), f.builtin('kv_idx')])]);
const mul = (a: Node, b: Node) => f.make('mul', 'f32', [a, b]);
const div = (a: Node, b: Node) => f.make('div', 'f32', [a, b]);
const varies = (n: Node) => topoOrder([n]).some((m) => m.op === 'dot' || (m.op === 'builtin' && (m.name === 'q_idx' || m.name === 'kv_idx')));
/** Operations evaluated per element: those whose value varies. */
const perElement = (n: Node) => topoOrder([n]).filter((m) => m.args.length > 0 && varies(m)).map((m) => m.op);

describe('invariant factors', () => {
  it('turns softcap into a tanh between two multiplies, its division into a hoisted reciprocal', () => {
    const score = mul(dot, f.num(0.125, 'f32'));
    const logit2 = mul(mul(cap, f.make('tanh', 'f32', [div(score, cap)])), f.num(Math.LOG2E, 'f32'));
    const out = hoistInvariantFactors(logit2, f);
    expect(perElement(logit2).sort()).toEqual(['div', 'mul', 'mul', 'mul', 'tanh']);
    expect(perElement(out).sort()).toEqual(['mul', 'mul', 'tanh']);
  });

  it('leaves divisions by a varying value, and invariant expressions, alone', () => {
    const byDist = div(cap, dist);
    expect(hoistInvariantFactors(byDist, f)).toBe(byDist);
    const inv = mul(div(cap, tau), f.num(3, 'f32'));
    expect(hoistInvariantFactors(inv, f)).toBe(inv);
  });

  it('keeps what division gives for zero, infinite and NaN divisors', () => {
    const q = div(dot, cap), out = hoistInvariantFactors(q, f);
    for (const c of [0, -0, Infinity, -Infinity, NaN]) {
      for (const d of [0, -0, 1.5, -2, Infinity, NaN]) {
        const env: EvalEnv = { dot: d, params: { cap: c } };
        expect(Object.is(evalNode(out, env), evalNode(q, env))).toBe(true);
      }
    }
  });

  // Products, quotients, negations and tanh: each rewrite adds one rounding, and
  // none of these ops amplifies a relative error (|x tanh'(x) / tanh(x)| <= 1).
  it('property: the rewritten logit is within a few ulp per operation of the original', () => {
    fc.assert(fc.property(fc.integer(), (seed) => {
      const r = rng(seed);
      let ops = 0;
      const gen = (depth: number): Node => {
        if (depth === 0 || r() < 0.25) {
          const leaves = [dot, dot, dist, cap, tau, f.num(0.5 + Math.floor(r() * 8), 'f32')];
          return leaves[Math.floor(r() * leaves.length)];
        }
        ops++;
        const k = Math.floor(r() * 6);
        if (k === 0) return f.make('neg', 'f32', [gen(depth - 1)]);
        if (k === 1) return f.make('tanh', 'f32', [gen(depth - 1)]);
        return k < 4 ? mul(gen(depth - 1), gen(depth - 1)) : div(gen(depth - 1), gen(depth - 1));
      };
      const logit = gen(6);
      const out = hoistInvariantFactors(logit, f);
      for (let k = 0; k < 4; k++) {
        const mag = () => (r() < 0.5 ? -1 : 1) * 10 ** (r() * 4 - 2);
        const env: EvalEnv = {
          dot: mag(), params: { cap: mag(), tau: mag() },
          builtins: { q_idx: 1 + Math.floor(r() * 1000), kv_idx: Math.floor(r() * 1000) },
        };
        const want = evalNode(logit, env) as number, got = evalNode(out, env) as number;
        if (!Number.isFinite(want) || Math.abs(want) < 1e-30 || Math.abs(want) > 1e30) continue;
        expect(Math.abs(got - want)).toBeLessThanOrEqual(4 * (ops + 1) * 2 ** -24 * Math.abs(want));
      }
    }), { numRuns: 500 });
  });
});
