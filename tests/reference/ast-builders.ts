// Tiny builders for hand-written ASTs, so that the reference tests do not
// depend on the parser. Spans are dummies.
import type { AttentionBlock, BinaryOp, Expr, Stmt, TableAxis } from '../../src/compiler/syntax/ast.ts';

const sp = { start: 0, end: 0 };

export const int = (value: number): Expr => ({ kind: 'number', value, isInt: true, text: String(value), span: sp });
export const real = (value: number): Expr => ({ kind: 'number', value, isInt: false, text: `${value}`, span: sp });
export const bool = (value: boolean): Expr => ({ kind: 'bool', value, span: sp });
export const id = (name: string): Expr => ({ kind: 'name', name, span: sp });
export const bin = (left: Expr, op: BinaryOp, right: Expr): Expr => ({ kind: 'binary', op, left, right, span: sp, opSpan: sp });
export const neg = (arg: Expr): Expr => ({ kind: 'unary', op: '-', arg, span: sp, opSpan: sp });
export const not = (arg: Expr): Expr => ({ kind: 'unary', op: '!', arg, span: sp, opSpan: sp });
export const call = (fn: string, ...args: Expr[]): Expr => ({ kind: 'call', fn, args, span: sp, fnSpan: sp });
export const index = (table: string, i: Expr): Expr => ({ kind: 'index', table, index: i, span: sp, tableSpan: sp });
export const iff = (cond: Expr, a: Expr, b: Expr): Expr => ({ kind: 'if', cond, then: a, else: b, span: sp });

export const param = (name: string, def: Expr, type: 'f32' | 'i32' = 'f32'): Stmt => ({ kind: 'param', name, nameSpan: sp, type, default: def, span: sp });
export const input = (name: string, elem: 'f32' | 'i32', axis: TableAxis): Stmt => ({ kind: 'input', name, nameSpan: sp, elem, axis, axisSpan: sp, span: sp });
export const let_ = (name: string, value: Expr): Stmt => ({ kind: 'let', name, nameSpan: sp, value, span: sp });
export const score = (value: Expr): Stmt => ({ kind: 'assign', target: 'score', targetSpan: sp, value, span: sp });
export const scale = (value: Expr): Stmt => ({ kind: 'assign', target: 'scale', targetSpan: sp, value, span: sp });
export const mask = (cond: Expr): Stmt => ({ kind: 'mask', cond, span: sp });

export const block = (name: string, ...body: Stmt[]): AttentionBlock => ({ name, nameSpan: sp, body, span: sp });
