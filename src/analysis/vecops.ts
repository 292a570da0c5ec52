// Whole-array versions of the IR ops, for lanes.ts.
//
// Why: ir/eval.ts `applyOp` costs ~100-300 ns a call (generic dispatch, an
// args array), and `analyze` applies ~10^8 ops for a 10^6-key sweep. These
// loops do the same arithmetic as `applyOp(op, type, args, 'f64')` for every
// op and type; tests/analysis/vecops.test.ts checks that op by op against
// applyOp itself on random values, so the two cannot drift apart silently.
// Booleans are 0/1. An op missing here falls back to applyOp (lanes.ts).
import type { ValueType } from '../compiler/syntax/ast.ts';
import type { Op } from '../compiler/ir/nodes.ts';

export type VecOp = (out: Float64Array, args: readonly Float64Array[], n: number) => void;

const un = (f: (a: number) => number): VecOp => (out, [a], n) => {
  for (let i = 0; i < n; i++) out[i] = f(a[i]);
};
const bin = (f: (a: number, b: number) => number): VecOp => (out, [a, b], n) => {
  for (let i = 0; i < n; i++) out[i] = f(a[i], b[i]);
};

/** f32 -> i32 as a kernel stores it (eval.ts toType): NaN is 0, saturate, truncate. */
const toI32 = (x: number) => (Number.isNaN(x) ? 0 : Math.trunc(Math.max(-2147483648, Math.min(2147483647, x))) | 0);

function castOp(type: ValueType): VecOp {
  if (type === 'i32') return un(toI32);
  if (type === 'bool') return un((x) => (x !== 0 ? 1 : 0));
  return un((x) => x);
}

/** The vectorised op, or undefined to fall back to applyOp. */
export function vecOp(op: Op, type: ValueType): VecOp | undefined {
  const int = type === 'i32';
  switch (op) {
    case 'neg': return int ? un((a) => -a | 0) : un((a) => -a);
    case 'not': return un((a) => (a ? 0 : 1));
    case 'cast': return castOp(type);
    case 'exp': return un(Math.exp);
    case 'exp2': return un((a) => Math.pow(2, a));
    case 'log': return un(Math.log);
    case 'log2': return un(Math.log2);
    case 'log1p': return un(Math.log1p);
    case 'sqrt': return un(Math.sqrt);
    case 'rsqrt': return un((a) => 1 / Math.sqrt(a));
    case 'tanh': return un(Math.tanh);
    case 'sigmoid': return un((a) => 1 / (1 + Math.exp(-a)));
    case 'abs': return int ? un((a) => Math.abs(a) | 0) : un(Math.abs);
    case 'sign': return int ? un((a) => Math.sign(a) | 0) : un(Math.sign);
    case 'floor': return un(Math.floor);
    case 'ceil': return un(Math.ceil);
    case 'add': return int ? bin((a, b) => (a + b) | 0) : bin((a, b) => a + b);
    case 'sub': return int ? bin((a, b) => (a - b) | 0) : bin((a, b) => a - b);
    case 'mul': return int ? bin(Math.imul) : bin((a, b) => a * b);
    case 'div': return int ? bin((a, b) => (b === 0 ? 0 : (a / b) | 0)) : bin((a, b) => a / b);
    case 'idiv': return int ? bin((a, b) => (b === 0 ? 0 : (a / b) | 0)) : bin((a, b) => (b === 0 ? 0 : Math.trunc(a / b)));
    case 'mod': return int ? bin((a, b) => (b === 0 ? 0 : (a % b) | 0)) : bin((a, b) => (b === 0 ? 0 : a % b));
    case 'min': return bin(Math.min);
    case 'max': return bin(Math.max);
    case 'pow': return bin(Math.pow);
    case 'lt': return bin((a, b) => (a < b ? 1 : 0));
    case 'le': return bin((a, b) => (a <= b ? 1 : 0));
    case 'gt': return bin((a, b) => (a > b ? 1 : 0));
    case 'ge': return bin((a, b) => (a >= b ? 1 : 0));
    case 'eq': return bin((a, b) => (a === b ? 1 : 0));
    case 'ne': return bin((a, b) => (a !== b ? 1 : 0));
    case 'and': return (out, args, n) => {
      for (let i = 0; i < n; i++) { let v = 1; for (const a of args) if (!a[i]) { v = 0; break; } out[i] = v; }
    };
    case 'or': return (out, args, n) => {
      for (let i = 0; i < n; i++) { let v = 0; for (const a of args) if (a[i]) { v = 1; break; } out[i] = v; }
    };
    case 'select': return (out, [c, a, b], n) => {
      for (let i = 0; i < n; i++) out[i] = c[i] ? a[i] : b[i];
    };
    default: return undefined; // leaves and load are handled by lanes.ts
  }
}
