// The checker: names and types of every attention block, as diagnostics.
// It runs on the AST parseSpec returns even when that had syntax errors:
// statements built from damaged syntax (isRecovered) are not checked again,
// but the names they define stay visible, so one typo is one message.
import type { AttentionBlock, Expr, Span, SpecFile, Stmt, ValueType } from '../syntax/ast.ts';
import { assertNever } from '../syntax/ast.ts';
import { isRecovered } from '../syntax/cst-to-ast.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import { error, help, note } from '../diagnostics/catalog.ts';
import { suggest } from './suggest.ts';
import { Scope, RESERVED_NAMES, type NameInfo } from './scope.ts';
import { checkExpr, where, type ExprContext } from './expr.ts';

export type { CheckedType } from './scope.ts';

/** Diagnostics for the whole file: every block, duplicate block names, no block at all. */
export function checkSpec(file: SpecFile): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  if (file.blocks.length === 0 && !isRecovered(file)) {
    diagnostics.push(error('E031', { start: 0, end: 0 }, {}, [help('a spec starts with: attention NAME { ... }')]));
  }
  const firstByName = new Map<string, AttentionBlock>();
  for (const block of file.blocks) {
    const first = firstByName.get(block.name);
    if (first && block.name !== '') {
      diagnostics.push(error('E030', block.nameSpan, { name: block.name }, [note(`first defined at ${where(file.text, first.nameSpan)}`)]));
    } else {
      firstByName.set(block.name, block);
    }
    diagnostics.push(...checkBlock(block, file.text).diagnostics);
  }
  return diagnostics.sort((a, b) => a.span.start - b.span.start);
}

export interface BlockCheck {
  diagnostics: Diagnostic[];
  /** The type of every expression that checked without error. */
  types: Map<Expr, ValueType>;
}

/** Check one block. `text` is the file's text, used to say where things were defined. */
export function checkBlock(block: AttentionBlock, text = ''): BlockCheck {
  const definitions = definitionsOf(block);
  let current = 0;
  const ctx: ExprContext = { scope: new Scope(), text, diagnostics: [], definedLater: (name) => laterDefinition(definitions, name, current), types: new Map() };
  block.body.forEach((stmt, i) => {
    current = i;
    checkStatement(stmt, ctx);
  });
  return { diagnostics: ctx.diagnostics, types: ctx.types };
}

/** For each name, the statements that define it, in order. */
function definitionsOf(block: AttentionBlock): Map<string, { index: number; span: Span }[]> {
  const defs = new Map<string, { index: number; span: Span }[]>();
  block.body.forEach((s, index) => {
    if ((s.kind === 'let' || s.kind === 'param' || s.kind === 'input') && s.name !== '') {
      const list = defs.get(s.name) ?? [];
      list.push({ index, span: s.nameSpan });
      defs.set(s.name, list);
    }
  });
  return defs;
}

function laterDefinition(defs: Map<string, { index: number; span: Span }[]>, name: string, index: number): Span | undefined {
  return defs.get(name)?.find((d) => d.index > index)?.span;
}

function checkStatement(stmt: Stmt, ctx: ExprContext): void {
  if (isRecovered(stmt)) {
    // Already reported as a syntax error: only make its name known (type unknown).
    if ((stmt.kind === 'let' || stmt.kind === 'param' || stmt.kind === 'input') && stmt.name !== '' && !ctx.scope.lookup(stmt.name) && !RESERVED_NAMES.has(stmt.name)) {
      ctx.scope.define(stmt.name, { kind: stmt.kind, type: 'error', span: stmt.nameSpan, scoreDependent: false });
    }
    return;
  }
  switch (stmt.kind) {
    case 'param':
      checkParamDefault(stmt, ctx);
      define(stmt.name, stmt.nameSpan, { kind: 'param', type: stmt.type, span: stmt.nameSpan, scoreDependent: false }, ctx);
      return;
    case 'input':
      define(stmt.name, stmt.nameSpan, { kind: 'input', type: stmt.elem, axis: stmt.axis, span: stmt.nameSpan, scoreDependent: false }, ctx);
      return;
    case 'let': {
      const value = checkExpr(stmt.value, ctx);
      define(stmt.name, stmt.nameSpan, { kind: 'let', type: value.type, span: stmt.nameSpan, scoreDependent: !!value.scoreVia }, ctx);
      return;
    }
    case 'assign': {
      const value = checkExpr(stmt.value, ctx);
      if (value.type === 'error') return;
      if (value.type === 'bool') {
        ctx.diagnostics.push(error(stmt.target === 'score' ? 'E022' : 'E023', stmt.value.span, { found: 'bool' },
          [help("to drop pairs use 'mask', or choose a value with if ... then ... else")]));
        return;
      }
      if (stmt.target === 'scale' && value.scoreVia) {
        const how = value.scoreVia === 'score' ? "it reads 'score'" : `it reads '${value.scoreVia}', which depends on score`;
        ctx.diagnostics.push(error('E024', stmt.value.span, {}, [note(how), help("transform the logit with 'score = ...' instead")]));
      }
      return;
    }
    case 'mask': {
      const cond = checkExpr(stmt.cond, ctx);
      if (cond.type !== 'error' && cond.type !== 'bool') {
        ctx.diagnostics.push(error('E021', stmt.cond.span, { found: cond.type }, [help('compare it, as in x != 0')]));
      }
      return;
    }
    default:
      assertNever(stmt, 'statement');
  }
}

function checkParamDefault(stmt: Extract<Stmt, { kind: 'param' }>, ctx: ExprContext): void {
  const d = stmt.default;
  if (isRecovered(d)) return;
  if (d.kind !== 'number') {
    ctx.diagnostics.push(error('E028', d.span, { name: stmt.name }, [note('a param is a run-time value with a fixed default; use let for computed values')]));
    return;
  }
  if (stmt.type === 'i32' && !d.isInt) {
    ctx.diagnostics.push(error('E029', d.span, { name: stmt.name, found: d.text }, [help(`drop ': i32' for an f32 param: param ${stmt.name} = ${d.text}`)]));
  }
}

function define(name: string, span: Span, info: NameInfo, ctx: ExprContext): void {
  if (name === '') return;
  if (RESERVED_NAMES.has(name)) {
    ctx.diagnostics.push(error('E016', span, { name }, [note(`'${name}' is a built-in name`), help(`choose another name, such as 'my_${name}'`)]));
    return;
  }
  const previous = ctx.scope.lookup(name);
  if (previous) {
    const at = previous.span ? `first defined at ${where(ctx.text, previous.span)}` : `'${name}' is already defined`;
    ctx.diagnostics.push(error('E015', span, { name }, [note(at)]));
    return;
  }
  ctx.scope.define(name, info);
}

/**
 * The block to compile: the only one, or the one named by `--entry`.
 * Several blocks and no entry, or an unknown entry, is a diagnostic.
 */
export function selectBlock(file: SpecFile, entry?: string): { block: AttentionBlock } | { diagnostic: Diagnostic } {
  const names = file.blocks.map((b) => b.name).filter((n) => n !== '');
  if (entry === undefined) {
    if (file.blocks.length === 1) return { block: file.blocks[0] };
    if (file.blocks.length === 0) return { diagnostic: error('E031', { start: 0, end: 0 }) };
    return { diagnostic: error('E032', file.blocks[1].nameSpan, { names: names.join(', ') }) };
  }
  const block = file.blocks.find((b) => b.name === entry);
  if (block) return { block };
  const close = suggest(entry, names);
  const notes = [...(close ? [help(`did you mean '${close}'?`)] : []), note(names.length > 0 ? `the blocks are ${names.join(', ')}` : 'the file has no attention block')];
  return { diagnostic: error('E033', { start: 0, end: 0 }, { name: entry }, notes) };
}
