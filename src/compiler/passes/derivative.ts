// The derivative of the logit with respect to the raw dot product q·k, as IR:
// what the backward kernels multiply dS by before it reaches dQ and dK
// (dQ_i = sum_j dS_ij * g_ij * k_j, with g = d logit / d dot).
//
// Forward-mode symbolic differentiation over the DAG, one rule per op. Values
// of type i32 or bool, table loads (their index is an integer) and the
// step-like functions (sign, floor, ceil, idiv) are piecewise constant: their
// derivative is 0 wherever it exists. At a kink (min, max, abs, a select's
// switch) the rule picks one side, as autograd does. `null` stands for an
// exact zero, so whole subgraphs that never read `dot` cost nothing.
import type { IrFactory, Node } from '../ir/nodes.ts';
import { topoOrder } from '../ir/nodes.ts';
import type { AttentionProgram } from '../ir/program.ts';
import { foldNode } from './fold.ts';

/** d logit / d dot of a program, folded; a `const 0` when the logit does not read the dot product. */
export function logitDerivative(program: AttentionProgram): Node {
  const f = program.factory;
  const d = derivative(program.logit, f);
  return d ? foldNode(d, f) : f.num(0, 'f32');
}

/** d root / d dot, or null where it is exactly 0. */
export function derivative(root: Node, f: IrFactory): Node | null {
  const memo = new Map<Node, Node | null>();
  for (const n of topoOrder([root])) memo.set(n, rule(n, (x) => memo.get(x)!, f));
  return memo.get(root)!;
}

function rule(n: Node, d: (x: Node) => Node | null, f: IrFactory): Node | null {
  if (n.type !== 'f32') return null;
  const F = (op: Parameters<IrFactory['make']>[0], ...args: Node[]) => f.make(op, 'f32', args);
  const num = (x: number) => f.num(x, 'f32');
  const [a, b] = n.args;
  // a' * factor, or null when a' is 0.
  const chain = (factor: () => Node): Node | null => {
    const da = d(a);
    return da ? F('mul', da, factor()) : null;
  };
  const sum = (x: Node | null, y: Node | null): Node | null => (x && y ? F('add', x, y) : x ?? y);
  const neg = (x: Node | null): Node | null => (x ? F('neg', x) : null);
  switch (n.op) {
    case 'dot': return num(1);
    case 'const': case 'builtin': case 'param': case 'load': case 'load_min': case 'load_max': return null;
    case 'cast': return a.type === 'f32' ? d(a) : null;
    case 'neg': return neg(d(a));
    case 'add': return sum(d(a), d(b));
    case 'sub': return sum(d(a), neg(d(b)));
    case 'mul': {
      const da = d(a), db = d(b);
      return sum(da && F('mul', da, b), db && F('mul', a, db));
    }
    case 'div': {
      // (a' - (a / b) * b') / b
      const da = d(a), db = d(b);
      const top = sum(da, db && F('neg', F('mul', n, db)));
      return top && F('div', top, b);
    }
    case 'exp': return chain(() => n);
    case 'exp2': return chain(() => F('mul', n, num(Math.LN2)));
    case 'log': return chain(() => F('div', num(1), a));
    case 'log2': return chain(() => F('div', num(1), F('mul', a, num(Math.LN2))));
    case 'log1p': return chain(() => F('div', num(1), F('add', a, num(1))));
    case 'sqrt': return chain(() => F('div', num(0.5), n));
    case 'rsqrt': return chain(() => F('mul', num(-0.5), F('div', n, a)));
    case 'tanh': return chain(() => F('sub', num(1), F('mul', n, n)));
    case 'sigmoid': return chain(() => F('mul', n, F('sub', num(1), n)));
    case 'abs': return chain(() => F('sign', a));
    case 'sign': case 'floor': case 'ceil': case 'idiv': case 'mod': return null;
    case 'min': case 'max': {
      const da = d(a), db = d(b);
      if (!da && !db) return null;
      const takesA = f.make(n.op === 'min' ? 'le' : 'ge', 'bool', [a, b]);
      return f.make('select', 'f32', [takesA, da ?? num(0), db ?? num(0)]);
    }
    case 'pow': {
      // d(a^b) = b * a^(b-1) * a' + a^b * log(a) * b'
      const da = d(a), db = d(b);
      return sum(da && F('mul', F('mul', b, F('pow', a, F('sub', b, num(1)))), da), db && F('mul', F('mul', n, F('log', a)), db));
    }
    case 'select': {
      const dt = d(b), de = d(n.args[2]);
      if (!dt && !de) return null;
      return f.make('select', 'f32', [a, dt ?? num(0), de ?? num(0)]);
    }
    default:
      throw new Error(`internal error: no derivative rule for ${n.op} of type ${n.type}`);
  }
}
