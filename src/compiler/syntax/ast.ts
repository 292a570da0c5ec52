// The abstract syntax tree of an `.attn` file. Every node carries the span of
// source text it came from so that later stages can point at it.
//
// The AST is produced by cst-to-ast.ts from chevrotain's CST, checked by
// check/, lowered to the IR by passes/lower.ts, and evaluated directly (without
// the IR) by the float64 reference in src/runtime/reference.ts.

/** Half-open range of character offsets into the source text. */
export interface Span {
  start: number;
  end: number;
}

export type ValueType = 'i32' | 'f32' | 'bool';
export type TableAxis = 'heads' | 'batch' | 'q_len' | 'kv_len';

export type UnaryOp = '-' | '!';
export type BinaryOp =
  | '||' | '&&'
  | '==' | '!=' | '<' | '<=' | '>' | '>='
  | '+' | '-'
  | '*' | '/' | '%';

export type Expr =
  /** `isInt` is true for literals written without `.`/exponent (`10`), false for `10.0`, `1e-3`. */
  | { kind: 'number'; value: number; isInt: boolean; text: string; span: Span }
  | { kind: 'bool'; value: boolean; span: Span }
  | { kind: 'name'; name: string; span: Span }
  | { kind: 'unary'; op: UnaryOp; arg: Expr; span: Span; opSpan: Span }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr; span: Span; opSpan: Span }
  | { kind: 'call'; fn: string; args: Expr[]; span: Span; fnSpan: Span }
  /** `table[index]` */
  | { kind: 'index'; table: string; index: Expr; span: Span; tableSpan: Span }
  | { kind: 'if'; cond: Expr; then: Expr; else: Expr; span: Span };

export type Stmt =
  | { kind: 'param'; name: string; nameSpan: Span; type: 'f32' | 'i32'; default: Expr; span: Span }
  | { kind: 'input'; name: string; nameSpan: Span; elem: 'f32' | 'i32'; axis: TableAxis; axisSpan: Span; span: Span }
  | { kind: 'let'; name: string; nameSpan: Span; value: Expr; span: Span }
  /** `score = EXPR` or `scale = EXPR` */
  | { kind: 'assign'; target: 'score' | 'scale'; targetSpan: Span; value: Expr; span: Span }
  | { kind: 'mask'; cond: Expr; span: Span };

export interface AttentionBlock {
  name: string;
  nameSpan: Span;
  body: Stmt[];
  span: Span;
}

export interface SpecFile {
  /** Path as given by the user (used in diagnostics). */
  path: string;
  text: string;
  blocks: AttentionBlock[];
}

/**
 * A frozen lookup table with no prototype: user names are looked up in these
 * tables, and `'constructor' in {}` is true for an ordinary object.
 */
function table<T>(entries: Record<string, T>): Readonly<Record<string, T>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, T>, entries));
}

/** Names the DSL defines in every block (DSL.md "Built-in names"). */
export const BUILTIN_TYPES: Readonly<Record<string, ValueType>> = table({
  score: 'f32',
  q_idx: 'i32',
  kv_idx: 'i32',
  head: 'i32',
  batch: 'i32',
  q_len: 'i32',
  kv_len: 'i32',
  head_dim: 'i32',
  causal: 'bool',
});

/** The size of a call that is the length of a table on each axis (DSL.md "input"). */
export const AXIS_SIZE: Readonly<Record<TableAxis, 'Hq' | 'B' | 'Nq' | 'Nk'>> = table({ heads: 'Hq', batch: 'B', q_len: 'Nq', kv_len: 'Nk' });

/** Built-in functions: name -> arity (DSL.md "Functions"). */
export const FUNCTION_ARITY: Readonly<Record<string, number>> = table({
  exp: 1, exp2: 1, log: 1, log2: 1, log1p: 1, sqrt: 1, rsqrt: 1, tanh: 1, sigmoid: 1,
  abs: 1, sign: 1, floor: 1, ceil: 1,
  min: 2, max: 2, pow: 2, idiv: 2,
  clamp: 3,
});

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`internal error: unexpected ${what}: ${JSON.stringify(x)}`);
}
