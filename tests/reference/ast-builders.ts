// The reference tests' spelling of the hand AST builders (operands around the
// operator, param default before type), so that they do not depend on the
// parser. The nodes themselves come from the pass tests' builder.
import type { BinaryOp, Expr, Stmt } from '../../src/compiler/syntax/ast.ts';
import * as ast from '../passes/ast-builder.ts';

export { int, real, bool, call, iff, input, let_, score, scale, mask, block } from '../passes/ast-builder.ts';
export const id = ast.v;
export const bin = (left: Expr, op: BinaryOp, right: Expr): Expr => ast.bin(op, left, right);
export const neg = (arg: Expr): Expr => ast.un('-', arg);
export const not = (arg: Expr): Expr => ast.un('!', arg);
export const index = ast.at;
export const param = (name: string, def: Expr, type: 'f32' | 'i32' = 'f32'): Stmt => ast.param(name, type, def);
