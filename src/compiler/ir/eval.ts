// IR evaluator: the value of IR nodes for one set of leaf values.
//
// Used by constant folding (passes/fold.ts evaluates single ops on constants
// through `applyOp`, so folding and evaluation cannot disagree), by tile
// classification (passes/mask-intervals.ts runs the interval program), by
// `explain`, and by tests. Two arithmetic modes:
//   'f32' (default): every f32 result is rounded with Math.fround, as a kernel
//                    computing in f32 would (transcendentals are computed in
//                    f64 and rounded once, i.e. as accurately as f32 allows);
//   'f64':           f32-typed values are kept in float64 (no rounding).
// i32 arithmetic is always exact 32-bit: wrapping add/sub/neg (|0), Math.imul,
// truncated idiv/mod with a zero divisor giving 0 (typing.ts).
//
// Iterative over topoOrder and memoized over the DAG: no recursion depth
// limit, each shared node is evaluated once.
import { assertNever } from '../syntax/ast.ts';
import type { ValueType } from '../syntax/ast.ts';
import type { BuiltinLeaf, Node, Op } from './nodes.ts';
import { topoOrder } from './nodes.ts';
import { own } from '../own.ts';

export type Value = number | boolean;
export type Arith = 'f32' | 'f64';

export interface EvalEnv {
  /** The raw q·k of the pair (leaf `dot`). */
  dot?: number;
  builtins?: Readonly<Partial<Record<BuiltinLeaf, number>>>;
  params?: Readonly<Record<string, number>>;
  tables?: Readonly<Record<string, ArrayLike<number>>>;
}

export interface EvalOptions {
  arith?: Arith;
}

const f32Round = (arith: Arith) => (arith === 'f32' ? Math.fround : (x: number) => x);

/** Converts a number to `type` the way a kernel stores it. */
function toType(x: number, type: ValueType, arith: Arith): Value {
  if (type === 'i32') {
    if (Number.isNaN(x)) return 0;
    return Math.trunc(Math.max(-2147483648, Math.min(2147483647, x))) | 0;
  }
  if (type === 'bool') return x !== 0;
  return f32Round(arith)(x);
}

/**
 * The result of one non-leaf op on already-evaluated argument values.
 * `argType` is the type of the first argument (needed by `cast`).
 */
export function applyOp(op: Op, type: ValueType, args: readonly Value[], arith: Arith, argType?: ValueType): Value {
  const r = f32Round(arith);
  const n = args as readonly number[];
  const [a, b] = n;
  const isInt = type === 'i32';
  switch (op) {
    case 'const': case 'dot': case 'builtin': case 'param': case 'load': case 'load_min': case 'load_max':
      throw new Error(`internal error: applyOp on leaf/load op ${op}`);
    case 'neg': return isInt ? -a | 0 : r(-a);
    case 'not': return !args[0];
    case 'cast': {
      const x = args[0];
      if (typeof x === 'boolean') return toType(x ? 1 : 0, type, arith);
      if (argType === 'f32' && type === 'i32') return toType(x, 'i32', arith);
      return toType(x, type, arith);
    }
    case 'exp': return r(Math.exp(a));
    case 'exp2': return r(Math.pow(2, a));
    case 'log': return r(Math.log(a));
    case 'log2': return r(Math.log2(a));
    case 'log1p': return r(Math.log1p(a));
    case 'sqrt': return r(Math.sqrt(a));
    case 'rsqrt': return r(1 / Math.sqrt(a));
    case 'tanh': return r(Math.tanh(a));
    case 'sigmoid': return r(1 / (1 + Math.exp(-a)));
    case 'abs': return isInt ? Math.abs(a) | 0 : r(Math.abs(a));
    case 'sign': return isInt ? Math.sign(a) | 0 : r(Math.sign(a));
    case 'floor': return r(Math.floor(a));
    case 'ceil': return r(Math.ceil(a));
    case 'add': return isInt ? (a + b) | 0 : r(a + b);
    case 'sub': return isInt ? (a - b) | 0 : r(a - b);
    case 'mul': return isInt ? Math.imul(a, b) : r(a * b);
    case 'div': return isInt ? (b === 0 ? 0 : (a / b) | 0) : r(a / b);
    case 'idiv': return b === 0 ? 0 : isInt ? (a / b) | 0 : r(Math.trunc(a / b));
    case 'mod': return b === 0 ? 0 : isInt ? (a % b) | 0 : r(a % b);
    case 'min': return isInt ? Math.min(a, b) : r(Math.min(a, b));
    case 'max': return isInt ? Math.max(a, b) : r(Math.max(a, b));
    case 'pow': return r(Math.pow(a, b));
    case 'lt': return a < b;
    case 'le': return a <= b;
    case 'gt': return a > b;
    case 'ge': return a >= b;
    case 'eq': return args[0] === args[1];
    case 'ne': return args[0] !== args[1];
    case 'and': return args.every(Boolean);
    case 'or': return args.some(Boolean);
    case 'select': return args[0] ? args[1] : args[2];
    default: return assertNever(op, 'IR op');
  }
}

function leafValue(node: Node, env: EvalEnv): Value {
  switch (node.op) {
    case 'const': return node.value!;
    case 'dot':
      if (env.dot === undefined) throw new Error('internal error: eval needs env.dot');
      return env.dot;
    case 'builtin': {
      const v = env.builtins?.[node.name as BuiltinLeaf];
      if (v === undefined) throw new Error(`internal error: eval needs builtin ${node.name}`);
      return v;
    }
    case 'param': {
      const v = env.params && own(env.params, node.name!);
      if (v === undefined) throw new Error(`internal error: eval needs param ${node.name}`);
      return v;
    }
    default: throw new Error(`internal error: not a leaf: ${node.op}`);
  }
}

function loadValue(node: Node, index: number, env: EvalEnv, arith: Arith): Value {
  const table = env.tables && own(env.tables, node.name!);
  if (!table) throw new Error(`internal error: eval needs table ${node.name}`);
  if (table.length === 0) return toType(0, node.type, arith);
  const i = Math.max(0, Math.min(table.length - 1, index));
  return toType(table[i], node.type, arith);
}

/** `load_min` / `load_max`: over the clamped indices clamp(lo)..clamp(max(lo, hi)). */
function loadRangeValue(node: Node, lo: number, hi: number, env: EvalEnv, arith: Arith): Value {
  const table = env.tables && own(env.tables, node.name!);
  if (!table) throw new Error(`internal error: eval needs table ${node.name}`);
  if (table.length === 0) return toType(0, node.type, arith);
  const last = table.length - 1;
  const a = Math.max(0, Math.min(last, lo)), b = Math.max(0, Math.min(last, Math.max(lo, hi)));
  let v = toType(table[a], node.type, arith) as number;
  for (let i = a + 1; i <= b; i++) {
    const x = toType(table[i], node.type, arith) as number;
    v = node.op === 'load_min' ? Math.min(v, x) : Math.max(v, x);
  }
  return v;
}

/** Values of every node reachable from `roots`. */
export function evalNodes(roots: readonly Node[], env: EvalEnv, opts: EvalOptions = {}): Map<Node, Value> {
  const arith = opts.arith ?? 'f32';
  const values = new Map<Node, Value>();
  for (const node of topoOrder(roots)) {
    let v: Value;
    if (node.args.length === 0) v = leafValue(node, env);
    else if (node.op === 'load') v = loadValue(node, values.get(node.args[0]) as number, env, arith);
    else if (node.op === 'load_min' || node.op === 'load_max') {
      v = loadRangeValue(node, values.get(node.args[0]) as number, values.get(node.args[1]) as number, env, arith);
    }
    else v = applyOp(node.op, node.type, node.args.map((x) => values.get(x)!), arith, node.args[0].type);
    values.set(node, v);
  }
  return values;
}

export function evalNode(node: Node, env: EvalEnv, opts: EvalOptions = {}): Value {
  return evalNodes([node], env, opts).get(node)!;
}
