// Types of expressions, following the rules of syntax/typing.ts; each failed
// rule is one diagnostic saying what was expected and what was found. A
// subexpression that already failed has type `error`, which silences every
// rule above it: one mistake, one message.
import type { Expr, Span, ValueType } from '../syntax/ast.ts';
import { FUNCTION_ARITY, assertNever } from '../syntax/ast.ts';
import { binaryType, callType, ifType, unaryType } from '../syntax/typing.ts';
import { isRecovered } from '../syntax/cst-to-ast.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import { error, help, note } from '../diagnostics/catalog.ts';
import { lineAndColumn } from '../diagnostics/format.ts';
import { suggest } from './suggest.ts';
import type { CheckedType, Scope } from './scope.ts';

export interface ExprInfo {
  type: CheckedType;
  /** The first name read that depends on `score` (`score` itself included), if any. */
  scoreVia?: string;
}

export interface ExprContext {
  scope: Scope;
  text: string;
  diagnostics: Diagnostic[];
  /** Where the block defines `name` after the current statement, if it does: "defined later" beats "unknown". */
  definedLater: (name: string) => Span | undefined;
  /** Every checked expression's type, for later stages that want it. */
  types: Map<Expr, ValueType>;
}

const INDEX_HINT: Record<string, string> = { heads: 'head', batch: 'batch', q_len: 'q_idx', kv_len: 'kv_idx' };

export const where = (text: string, span: Span) => {
  const { line, column } = lineAndColumn(text, span.start);
  return `${line}:${column}`;
};

const typesFound = (ts: readonly ValueType[]) => (ts.length === 1 ? ts[0] : `${ts.slice(0, -1).join(', ')} and ${ts[ts.length - 1]}`);

export function checkExpr(e: Expr, ctx: ExprContext): ExprInfo {
  const info = isRecovered(e) ? { type: 'error' as const } : checkNode(e, ctx);
  if (info.type !== 'error') ctx.types.set(e, info.type);
  return info;
}

/** Combine what operands say about score dependence. */
const via = (...infos: ExprInfo[]) => infos.find((i) => i.scoreVia)?.scoreVia;

function checkNode(e: Expr, ctx: ExprContext): ExprInfo {
  switch (e.kind) {
    case 'number':
      return { type: e.isInt ? 'i32' : 'f32' };
    case 'bool':
      return { type: 'bool' };
    case 'name':
      return checkName(e.name, e.span, ctx);
    case 'unary': {
      const arg = checkExpr(e.arg, ctx);
      if (arg.type === 'error') return arg;
      const r = unaryType(e.op, arg.type);
      if (r.ok) return { type: r.type, scoreVia: arg.scoreVia };
      ctx.diagnostics.push(error('E017', e.opSpan, { op: e.op, expected: r.expected, found: arg.type }));
      return { type: 'error' };
    }
    case 'binary': {
      const l = checkExpr(e.left, ctx);
      const r = checkExpr(e.right, ctx);
      if (l.type === 'error' || r.type === 'error') return { type: 'error' };
      const t = binaryType(e.op, l.type, r.type);
      if (t.ok) return { type: t.type, scoreVia: via(l, r) };
      const notes = e.op === '/' || e.op === '%' || l.type === 'bool' || r.type === 'bool' ? hintsForBinary(e.op, l.type, r.type) : [];
      ctx.diagnostics.push(error('E017', e.opSpan, { op: e.op, expected: t.expected, found: `${l.type} and ${r.type}` }, notes));
      return { type: 'error' };
    }
    case 'if': {
      const c = checkExpr(e.cond, ctx);
      const a = checkExpr(e.then, ctx);
      const b = checkExpr(e.else, ctx);
      let failed = c.type === 'error' || a.type === 'error' || b.type === 'error';
      if (c.type !== 'error' && c.type !== 'bool') {
        ctx.diagnostics.push(error('E018', e.cond.span, { found: c.type }, [help('compare it, as in x != 0')]));
        failed = true;
      }
      if (failed || a.type === 'error' || b.type === 'error') return { type: 'error' };
      const t = ifType(a.type, b.type);
      if (t.ok) return { type: t.type, scoreVia: via(c, a, b) };
      ctx.diagnostics.push(error('E019', { start: e.then.span.start, end: e.else.span.end }, { a: a.type, b: b.type }));
      return { type: 'error' };
    }
    case 'call':
      return checkCall(e, ctx);
    case 'index':
      return checkIndex(e, ctx);
    default:
      return assertNever(e, 'expression');
  }
}

function hintsForBinary(op: string, l: ValueType, r: ValueType): string[] {
  if (op === '%' && (l === 'f32' || r === 'f32')) return [help('for a real remainder write x - y * floor(x / y)')];
  if ((op === '+' || op === '*') && l === 'bool' && r === 'bool') return [help(`for logic use '${op === '+' ? '||' : '&&'}'`)];
  return [];
}

function checkName(name: string, span: Span, ctx: ExprContext): ExprInfo {
  const info = ctx.scope.lookup(name);
  if (info) {
    if (info.kind === 'input') {
      const hint = INDEX_HINT[info.axis ?? ''] ?? 'i';
      ctx.diagnostics.push(error('E026', span, { name, hint }));
      return { type: 'error' };
    }
    return { type: info.type, scoreVia: info.scoreDependent ? name : undefined };
  }
  ctx.diagnostics.push(unknownName(name, span, ctx));
  return { type: 'error' };
}

export function unknownName(name: string, span: Span, ctx: ExprContext): Diagnostic {
  const later = ctx.definedLater(name);
  if (later) return error('E012', span, { name }, [note(`'${name}' is defined later, at ${where(ctx.text, later)}; a name must be defined before it is used`)]);
  if (name === 'scale') return error('E012', span, { name }, [note("'scale' can be set with 'scale = ...' but not read; the initial score already includes it")]);
  const close = suggest(name, ctx.scope.visible());
  return error('E012', span, { name }, close ? [help(`did you mean '${close}'?`)] : []);
}

function checkCall(e: Extract<Expr, { kind: 'call' }>, ctx: ExprContext): ExprInfo {
  const args = e.args.map((a) => checkExpr(a, ctx));
  const arity = FUNCTION_ARITY[e.fn];
  if (arity === undefined || !Object.prototype.hasOwnProperty.call(FUNCTION_ARITY, e.fn)) {
    const close = suggest(e.fn, Object.keys(FUNCTION_ARITY));
    const notes = [
      ...(close ? [help(`did you mean '${close}'?`)] : []),
      ...(ctx.scope.lookup(e.fn) ? [note(`'${e.fn}' is a value, not a function`)] : []),
      ...(!close ? [note(`the functions are ${Object.keys(FUNCTION_ARITY).join(', ')}`)] : []),
    ];
    ctx.diagnostics.push(error('E013', e.fnSpan, { name: e.fn }, notes));
    return { type: 'error' };
  }
  if (args.length !== arity) {
    const plural = (n: number) => `${n} argument${n === 1 ? '' : 's'}`;
    ctx.diagnostics.push(error('E014', e.span, { name: e.fn, expected: plural(arity), found: args.length }));
    return { type: 'error' };
  }
  if (args.some((a) => a.type === 'error')) return { type: 'error' };
  const types = args.map((a) => a.type as ValueType);
  const t = callType(e.fn, types);
  if (t.ok) return { type: t.type, scoreVia: via(...args) };
  ctx.diagnostics.push(error('E020', e.span, { name: e.fn, expected: t.expected, found: typesFound(types) }));
  return { type: 'error' };
}

function checkIndex(e: Extract<Expr, { kind: 'index' }>, ctx: ExprContext): ExprInfo {
  const index = checkExpr(e.index, ctx);
  const table = ctx.scope.lookup(e.table);
  if (!table) {
    ctx.diagnostics.push(unknownName(e.table, e.tableSpan, ctx));
    return { type: 'error' };
  }
  if (table.kind !== 'input') {
    const what = table.kind === 'builtin' ? 'a built-in value' : `a ${table.kind}`;
    ctx.diagnostics.push(error('E025', e.tableSpan, { name: e.table }, [note(`'${e.table}' is ${what}; only names declared with 'input' are tables`)]));
    return { type: 'error' };
  }
  if (index.type !== 'error' && index.type !== 'i32') {
    const notes = index.type === 'f32' ? [help('index with an integer expression such as q_idx, kv_idx or head')] : [];
    ctx.diagnostics.push(error('E027', e.index.span, { found: index.type }, notes));
    return { type: 'error' };
  }
  return { type: table.type, scoreVia: index.scoreVia };
}
