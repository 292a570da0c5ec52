// Invariant factors out of the per-element logit (a strength reduction for
// the kernels; the reference keeps the spec's own operations).
//
// What, for f32 nodes whose value varies per element (they read `dot` or a
// position), with h, h2 invariant (no `dot`, no q_idx / kv_idx):
//   x / h          -> x * (1 / h)         1 / h is hoisted: once per block
//   (x * h2) * h   -> x * (h2 * h)        so a chain of scales is one multiply
// Why: `score / cap` costs an IEEE division per element (a reciprocal, a
// Newton step, a range check and a slow path: 4 of the softcap kernel's 4
// special-function operations per element were its division, tanh and exp2),
// and `cap * tanh(...) * log2(e)` two multiplies where one does.
//
// Numerics: each rewrite adds at most one rounding (about 1 ulp) to the
// logit. Zero, infinite and NaN divisors give what division gives (x * (1/0)
// is x * inf; x * (1/inf) is x * 0). Only a divisor below 2^-128 in magnitude
// (a subnormal f32) differs: its reciprocal overflows to infinity, so the
// quotient is infinite where true division might still be finite.
import type { IrFactory, Node } from '../ir/nodes.ts';
import { topoOrder } from '../ir/nodes.ts';
import { Folder } from './fold.ts';

const readsElement = (n: Node) => n.op === 'dot' || (n.op === 'builtin' && (n.name === 'q_idx' || n.name === 'kv_idx'));

export function hoistInvariantFactors(root: Node, f: IrFactory): Node {
  const folder = new Folder(f);
  const varies = new Map<Node, boolean>();
  const variesOf = (n: Node): boolean => {
    const hit = varies.get(n);
    if (hit !== undefined) return hit;
    // Only new nodes get here; their args were classified when they were made.
    const v = readsElement(n) || n.args.some((a) => varies.get(a) ?? readsElement(a));
    varies.set(n, v);
    return v;
  };
  const make = (op: 'mul' | 'div', a: Node, b: Node) => {
    const n = folder.make(op, 'f32', [a, b]);
    varies.set(n, variesOf(a) || variesOf(b));
    return n;
  };
  // x * h, where x varies and h does not: merges h into an invariant factor of x.
  const scale = (x: Node, h: Node): Node => {
    if (x.op === 'mul') {
      const [a, b] = x.args;
      if (variesOf(a) !== variesOf(b)) {
        const [e, h2] = variesOf(a) ? [a, b] : [b, a];
        return make('mul', e, make('mul', h2, h));
      }
    }
    return make('mul', x, h);
  };

  const out = new Map<Node, Node>();
  for (const n of topoOrder([root])) {
    const args = n.args.map((a) => out.get(a)!);
    let m: Node;
    if (n.type === 'f32' && n.op === 'div' && variesOf(args[0]) && !variesOf(args[1])) {
      m = scale(args[0], make('div', f.num(1, 'f32'), args[1]));
    } else if (n.type === 'f32' && n.op === 'mul' && variesOf(args[0]) !== variesOf(args[1])) {
      m = variesOf(args[0]) ? scale(args[0], args[1]) : scale(args[1], args[0]);
    } else if (args.every((a, i) => a === n.args[i])) {
      m = n;
    } else {
      const extra = { ...(n.value !== undefined ? { value: n.value } : {}), ...(n.name !== undefined ? { name: n.name } : {}) };
      m = f.make(n.op, n.type, args, extra);
    }
    variesOf(m);
    out.set(n, m);
  }
  return out.get(root)!;
}
