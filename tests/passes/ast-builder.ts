// A tiny hand builder of ASTs for the pass tests (no parser needed).
import type { AttentionBlock, BinaryOp, Expr, Stmt, TableAxis } from '../../src/compiler/syntax/ast.ts';

const sp = { start: 0, end: 0 };
export const int = (value: number): Expr => ({ kind: 'number', value, isInt: true, text: String(value), span: sp });
export const real = (value: number): Expr => ({ kind: 'number', value, isInt: false, text: `${value}.0`, span: sp });
export const bool = (value: boolean): Expr => ({ kind: 'bool', value, span: sp });
export const v = (name: string): Expr => ({ kind: 'name', name, span: sp });
export const bin = (op: BinaryOp, left: Expr, right: Expr): Expr => ({ kind: 'binary', op, left, right, span: sp, opSpan: sp });
export const un = (op: '-' | '!', arg: Expr): Expr => ({ kind: 'unary', op, arg, span: sp, opSpan: sp });
export const call = (fn: string, ...args: Expr[]): Expr => ({ kind: 'call', fn, args, span: sp, fnSpan: sp });
export const at = (table: string, index: Expr): Expr => ({ kind: 'index', table, index, span: sp, tableSpan: sp });
export const iff = (cond: Expr, then: Expr, els: Expr): Expr => ({ kind: 'if', cond, then, else: els, span: sp });

export const param = (name: string, type: 'f32' | 'i32', dflt: Expr): Stmt => ({ kind: 'param', name, nameSpan: sp, type, default: dflt, span: sp });
export const input = (name: string, elem: 'f32' | 'i32', axis: TableAxis): Stmt => ({ kind: 'input', name, nameSpan: sp, elem, axis, axisSpan: sp, span: sp });
export const let_ = (name: string, value: Expr): Stmt => ({ kind: 'let', name, nameSpan: sp, value, span: sp });
export const score = (value: Expr): Stmt => ({ kind: 'assign', target: 'score', targetSpan: sp, value, span: sp });
export const scale = (value: Expr): Stmt => ({ kind: 'assign', target: 'scale', targetSpan: sp, value, span: sp });
export const mask = (cond: Expr): Stmt => ({ kind: 'mask', cond, span: sp });
export const block = (name: string, ...body: Stmt[]): AttentionBlock => ({ name, nameSpan: sp, body, span: sp });

/** The examples of DSL.md, by hand. */
export const EXAMPLES = {
  causal: () => block('causal', mask(v('causal'))),
  scaleInvariant: () => block('scale_invariant',
    param('tau', 'f32', real(10)),
    let_('t', bin('-', v('q_idx'), v('kv_idx'))),
    let_('l', call('log1p', bin('/', v('t'), v('tau')))),
    score(bin('-', bin('*', v('score'), call('sqrt', bin('+', bin('*', int(2), v('l')), int(1)))), bin('*', int(2), v('l')))),
    mask(v('causal'))),
  alibi: () => block('alibi', input('slopes', 'f32', 'heads'),
    score(bin('-', v('score'), bin('*', at('slopes', v('head')), bin('-', v('q_idx'), v('kv_idx'))))), mask(v('causal'))),
  softcap: () => block('softcap', param('cap', 'f32', real(50)),
    score(bin('*', v('cap'), call('tanh', bin('/', v('score'), v('cap'))))), mask(v('causal'))),
  slidingWindow: () => block('sliding_window', param('window', 'i32', int(1024)),
    mask(bin('&&', v('causal'), bin('<', bin('-', v('q_idx'), v('kv_idx')), v('window'))))),
  document: () => block('document', input('doc', 'i32', 'kv_len'),
    mask(bin('&&', v('causal'), bin('==', at('doc', v('q_idx')), at('doc', v('kv_idx')))))),
  prefixLm: () => block('prefix_lm', param('prefix', 'i32', int(256)),
    mask(bin('||', v('causal'), bin('<', v('kv_idx'), v('prefix'))))),
};
