// fast-check arbitraries for random (syntactically valid, not necessarily
// well-typed) ASTs, used by the round-trip property. Spans are dummies: the
// property compares ASTs with spans stripped.
import fc from 'fast-check';
import type { AttentionBlock, BinaryOp, Expr, SpecFile, Stmt } from '../../src/compiler/syntax/ast.ts';

const S = { start: 0, end: 0 };

/** Plain names, built-ins, soft keywords, and words reserved in WGSL/CUDA/C++/Python (all legal here). */
export const NAMES = ['x', 'tau', 'l_2', '_t', 'score', 'q_idx', 'causal', 'i32', 'f32', 'heads', 'var', 'fn', 'float', 'int', 'lambda', 'def', 'struct', 'return', 'while', 'None'];
const BINARY: BinaryOp[] = ['||', '&&', '==', '!=', '<', '<=', '>', '>=', '+', '-', '*', '/', '%'];
const FUNCTIONS = ['exp', 'min', 'clamp', 'foo', 'var'];

const name = fc.constantFrom(...NAMES);

const intText = fc.integer({ min: 0, max: 2147483647 }).map(String);
const floatText = fc.oneof(
  fc.tuple(fc.nat(99999), fc.nat(9999)).map(([a, b]) => `${a}.${b}`),
  fc.tuple(fc.nat(99), fc.constantFrom('e', 'E', 'e-', 'e+'), fc.nat(30)).map(([a, e, c]) => `${a}${e}${c}`),
  fc.tuple(fc.nat(9), fc.nat(99), fc.nat(20)).map(([a, b, c]) => `${a}.${b}e-${c}`),
);

const numberLit = (text: string): Expr => ({ kind: 'number', value: Number(text), isInt: /^\d+$/.test(text), text, span: S });

export const exprArb: fc.Arbitrary<Expr> = fc.letrec<{ expr: Expr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(intText, floatText).map(numberLit),
    fc.boolean().map((value): Expr => ({ kind: 'bool', value, span: S })),
    name.map((n): Expr => ({ kind: 'name', name: n, span: S })),
    fc.tuple(fc.constantFrom<'-' | '!'>('-', '!'), tie('expr')).map(([op, arg]): Expr => ({ kind: 'unary', op, arg, span: S, opSpan: S })),
    fc.tuple(fc.constantFrom(...BINARY), tie('expr'), tie('expr')).map(([op, left, right]): Expr => ({ kind: 'binary', op, left, right, span: S, opSpan: S })),
    fc.tuple(fc.constantFrom(...FUNCTIONS), fc.array(tie('expr'), { maxLength: 3 })).map(([fn, args]): Expr => ({ kind: 'call', fn, args, span: S, fnSpan: S })),
    fc.tuple(name, tie('expr')).map(([table, index]): Expr => ({ kind: 'index', table, index, span: S, tableSpan: S })),
    fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([cond, a, b]): Expr => ({ kind: 'if', cond, then: a, else: b, span: S })),
  ),
})).expr;

const paramDefault = fc.oneof(
  fc.oneof(intText, floatText).map(numberLit),
  fc.tuple(fc.integer({ min: 1, max: 2147483647 }), fc.boolean()).map(([n, isFloat]): Expr => {
    const text = isFloat ? `-${n}.5` : `-${n}`;
    return { kind: 'number', value: Number(text), isInt: !isFloat, text, span: S };
  }),
);

export const stmtArb: fc.Arbitrary<Stmt> = fc.oneof(
  fc.tuple(name, fc.constantFrom<'f32' | 'i32'>('f32', 'i32'), paramDefault).map(([n, type, d]): Stmt => ({ kind: 'param', name: n, nameSpan: S, type, default: d, span: S })),
  fc.tuple(name, fc.constantFrom<'f32' | 'i32'>('f32', 'i32'), fc.constantFrom<'heads' | 'batch' | 'q_len' | 'kv_len'>('heads', 'batch', 'q_len', 'kv_len'))
    .map(([n, elem, axis]): Stmt => ({ kind: 'input', name: n, nameSpan: S, elem, axis, axisSpan: S, span: S })),
  fc.tuple(name, exprArb).map(([n, value]): Stmt => ({ kind: 'let', name: n, nameSpan: S, value, span: S })),
  fc.tuple(fc.constantFrom<'score' | 'scale'>('score', 'scale'), exprArb).map(([target, value]): Stmt => ({ kind: 'assign', target, targetSpan: S, value, span: S })),
  exprArb.map((cond): Stmt => ({ kind: 'mask', cond, span: S })),
);

export const blockArb: fc.Arbitrary<AttentionBlock> = fc.tuple(name, fc.array(stmtArb, { maxLength: 6 }))
  .map(([n, body]) => ({ name: n, nameSpan: S, body, span: S }));

export const fileArb: fc.Arbitrary<SpecFile> = fc.array(blockArb, { minLength: 1, maxLength: 3 })
  .map((blocks) => ({ path: 'random.attn', text: '', blocks }));

/** An AST (compare `file.blocks`) without spans, for comparing a reparse with the original. */
export function withoutSpans(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSpans);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (!/span$/i.test(k)) out[k] = withoutSpans(v);
    return out;
  }
  return value;
}
