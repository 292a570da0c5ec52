// CST -> AST: turns chevrotain's concrete syntax tree into the AST of ast.ts.
// This is where the meaning the grammar leaves open is decided: operator
// precedence (the grammar is flat, see grammar/parser.ts), number literals,
// type and axis names, and which names a `NAME = EXPR` statement may assign.
//
// The CST may be partial after chevrotain's error recovery: every child access
// is defensive, and whatever was damaged is marked (markRecovered) so that the
// checker stays quiet about it instead of piling errors on a syntax error.
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type { AttentionBlock, BinaryOp, Expr, Span, Stmt, TableAxis, UnaryOp } from './ast.ts';
import { BUILTIN_TYPES } from './ast.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import { error, help } from '../diagnostics/catalog.ts';
import { suggest } from '../check/suggest.ts';

// ---- recovery marks -------------------------------------------------------

// A side table instead of a field, so the shared AST types stay unchanged.
const recovered = new WeakSet<object>();

/** Mark an AST node (file, block, statement or expression) as built from damaged or invalid syntax. */
export function markRecovered(node: object): void {
  recovered.add(node);
}

/** True for nodes built from a syntax error: their diagnostics were already reported. */
export function isRecovered(node: object): boolean {
  return recovered.has(node);
}

// ---- precedence -----------------------------------------------------------

const PRECEDENCE: Record<BinaryOp, number> = {
  '||': 1, '&&': 2,
  '==': 3, '!=': 3, '<': 3, '<=': 3, '>': 3, '>=': 3,
  '+': 4, '-': 4,
  '*': 5, '/': 5, '%': 5,
};
export const binaryPrecedence = (op: BinaryOp): number => PRECEDENCE[op];
export const isComparison = (op: BinaryOp): boolean => PRECEDENCE[op] === 3;

const AXES: readonly TableAxis[] = ['heads', 'batch', 'q_len', 'kv_len'];
const I32_MAX = 2147483647;
const VALID_NUMBER = /^\d+(\.\d+)?([eE][+-]?\d+)?$/;

// ---- the converter --------------------------------------------------------

const isNode = (e: CstElement | undefined): e is CstNode => !!e && 'children' in e;
const isToken = (e: CstElement | undefined): e is IToken => !!e && 'image' in e;

export interface ConvertOptions {
  /** Placeholder tokens that stand for an expression parse.ts cut out (too deep / too long). */
  placeholders: ReadonlySet<IToken>;
  /** Start offsets of tokens where the parser reported an error. */
  errorOffsets: readonly number[];
}

export class CstToAst {
  /** End of the last real token seen: the position of anything chevrotain inserted. */
  private lastEnd = 0;
  readonly diagnostics: Diagnostic[] = [];

  constructor(private readonly opts: ConvertOptions) {}

  blocks(file: CstNode): AttentionBlock[] {
    return this.nodes(file, 'block').map((b) => this.block(b));
  }

  private tok(node: CstNode, key: string, i = 0): IToken | undefined {
    const e = node.children[key]?.[i];
    return isToken(e) ? e : undefined;
  }

  private firstToken(node: CstNode): IToken | undefined {
    let best: IToken | undefined;
    const visit = (n: CstNode, depth: number) => {
      if (depth > 4) return;
      for (const e of Object.values(n.children).flat()) {
        if (isToken(e) && this.real(e) && (!best || e.startOffset < best.startOffset)) best = e;
        else if (isNode(e)) visit(e, depth + 1);
      }
    };
    visit(node, 0);
    return best;
  }

  private nodes(node: CstNode, key: string): CstNode[] {
    return (node.children[key] ?? []).filter(isNode);
  }

  private real(t: IToken | undefined): t is IToken {
    return !!t && !t.isInsertedInRecovery && Number.isFinite(t.startOffset) && t.image !== '';
  }

  private span(t: IToken | undefined): Span {
    if (!this.real(t)) return { start: this.lastEnd, end: this.lastEnd };
    this.lastEnd = Math.max(this.lastEnd, (t.endOffset ?? t.startOffset) + 1);
    return { start: t.startOffset, end: (t.endOffset ?? t.startOffset) + 1 };
  }

  /** A node is damaged if chevrotain re-synced inside it or inserted/deleted a token in its range. */
  private damaged(node: CstNode, span: Span): boolean {
    if (node.recoveredNode) return true;
    return this.opts.errorOffsets.some((o) => o >= span.start && o <= span.end);
  }

  private block(b: CstNode): AttentionBlock {
    const start = this.span(this.tok(b, 'Attention'));
    const nameTok = this.tok(b, 'Identifier');
    const nameSpan = this.span(nameTok);
    const body: Stmt[] = [];
    const separators = (b.children.Sep ?? []).filter(isToken).map((t) => t.startOffset);
    const separatorBetween = (from: number, to: number) => {
      while (sepIndex < separators.length && separators[sepIndex] < from) sepIndex++;
      return sepIndex < separators.length && separators[sepIndex] < to;
    };
    let previous: Stmt | undefined;
    let sepIndex = 0; // separators and statements are both in source order: one forward scan
    for (const s of this.nodes(b, 'statement')) {
      const stmt = this.statement(s);
      if (!stmt) continue;
      const previousEnd = previous?.span.end ?? -1;
      // After a damaged statement the missing separator is part of the same mistake.
      if (previous && !isRecovered(previous) && !this.opts.errorOffsets.some((o) => o >= previousEnd && o <= stmt.span.start) && !separatorBetween(previousEnd, stmt.span.start)) {
        const first = this.firstToken(s);
        this.diagnostics.push(error('E001', stmt.span.start === stmt.span.end ? stmt.span : { start: stmt.span.start, end: first ? first.endOffset! + 1 : stmt.span.start },
          { detail: `expected a newline or ';' between two statements, found ${first ? `'${first.image}'` : 'a statement'}` }));
      }
      previous = stmt;
      body.push(stmt);
    }
    const end = this.span(this.tok(b, 'RCurly'));
    const block: AttentionBlock = { name: this.real(nameTok) ? nameTok.image : '', nameSpan, body, span: { start: start.start, end: Math.max(end.end, this.lastEnd) } };
    if (this.damaged(b, block.span)) markRecovered(block);
    return block;
  }

  private statement(s: CstNode): Stmt | undefined {
    const inner = Object.values(s.children).flat().find(isNode);
    if (!inner) return undefined;
    const before = this.diagnostics.length;
    const stmt = this.statementOf(inner);
    if (stmt && (this.damaged(inner, stmt.span) || this.diagnostics.length > before || s.recoveredNode)) markRecovered(stmt);
    return stmt;
  }

  private statementOf(n: CstNode): Stmt | undefined {
    const first = n.children[Object.keys(n.children)[0]]?.[0];
    const start = isToken(first) ? this.span(first).start : this.lastEnd;
    const nameTok = this.tok(n, 'Identifier');
    const name = this.real(nameTok) ? nameTok.image : '';
    switch (n.name) {
      case 'paramStmt': {
        const nameSpan = this.span(nameTok);
        const ann = this.nodes(n, 'typeAnnotation')[0];
        const type = ann ? this.typeName(this.tok(ann, 'Identifier')) : 'f32';
        const value = this.expression(this.nodes(n, 'expression')[0], true);
        return { kind: 'param', name, nameSpan, type, default: value, span: { start, end: Math.max(value.span.end, this.lastEnd) } };
      }
      case 'inputStmt': {
        const nameSpan = this.span(nameTok);
        const elem = this.typeName(this.tok(n, 'Identifier', 1));
        const axisTok = this.tok(n, 'Identifier', 2);
        const axisSpan = this.span(axisTok);
        const axis = this.axis(axisTok, axisSpan);
        this.span(this.tok(n, 'RBracket'));
        return { kind: 'input', name, nameSpan, elem, axis, axisSpan, span: { start, end: this.lastEnd } };
      }
      case 'letStmt': {
        const nameSpan = this.span(nameTok);
        const value = this.expression(this.nodes(n, 'expression')[0]);
        return { kind: 'let', name, nameSpan, value, span: { start, end: Math.max(value.span.end, this.lastEnd) } };
      }
      case 'maskStmt': {
        const cond = this.expression(this.nodes(n, 'expression')[0]);
        return { kind: 'mask', cond, span: { start, end: Math.max(cond.span.end, this.lastEnd) } };
      }
      case 'assignStmt':
        return this.assignment(n, nameTok, name, start);
      default:
        return undefined;
    }
  }

  /** `NAME = EXPR`: only score and scale; anything else is E035, kept as a damaged statement. */
  private assignment(n: CstNode, nameTok: IToken | undefined, name: string, start: number): Stmt {
    const nameSpan = this.span(nameTok);
    const value = this.expression(this.nodes(n, 'expression')[0]);
    const span = { start, end: Math.max(value.span.end, this.lastEnd) };
    if (name === 'score' || name === 'scale') return { kind: 'assign', target: name, targetSpan: nameSpan, value, span };
    const meant = name === '' ? undefined : (suggest(name, ['score', 'scale']) as 'score' | 'scale' | undefined);
    if (name !== '') {
      const hint = meant ? help(`did you mean '${meant}'?`)
        : name in BUILTIN_TYPES ? help(`'${name}' is a built-in name and is read-only`)
        : help(`use 'let ${name} = ...' to define a new name`);
      this.diagnostics.push(error('E035', nameSpan, { name }, [hint]));
    }
    // Kept (and marked) so the checker knows the name the user meant to define.
    const stmt: Stmt = meant ? { kind: 'assign', target: meant, targetSpan: nameSpan, value, span }
      : { kind: 'let', name: name in BUILTIN_TYPES ? '' : name, nameSpan, value, span };
    markRecovered(stmt);
    return stmt;
  }

  private typeName(t: IToken | undefined): 'f32' | 'i32' {
    const span = this.span(t);
    if (!this.real(t)) return 'f32';
    if (t.image === 'f32' || t.image === 'i32') return t.image;
    const close = suggest(t.image, ['f32', 'i32']);
    const notes = close ? [help(`did you mean '${close}'?`)]
      : t.image === 'bool' ? [help('params and inputs are numbers; compare a number to make a bool')] : [];
    this.diagnostics.push(error('E011', span, { name: t.image, expected: 'i32 or f32' }, notes));
    return 'f32';
  }

  private axis(t: IToken | undefined, span: Span): TableAxis {
    if (!this.real(t)) return 'heads';
    if ((AXES as readonly string[]).includes(t.image)) return t.image as TableAxis;
    const close = suggest(t.image, AXES);
    this.diagnostics.push(error('E034', span, { name: t.image }, close ? [help(`did you mean '${close}'?`)] : []));
    return 'heads';
  }

  // ---- expressions --------------------------------------------------------

  /** A stand-in for an expression that could not be built; marked so nobody reports on it. */
  private placeholder(span: Span = { start: this.lastEnd, end: this.lastEnd }): Expr {
    const e: Expr = { kind: 'number', value: 0, isInt: true, text: '0', span };
    markRecovered(e);
    return e;
  }

  /**
   * expression := operand (op operand)*, folded by precedence with an explicit
   * stack (no recursion per operator, so long chains cost no JS stack).
   * `paramDefault`: a lone `-NUMBER` becomes one negative literal.
   */
  expression(n: CstNode | undefined, paramDefault = false): Expr {
    if (!n) return this.placeholder();
    const operands = this.nodes(n, 'operand');
    const ops = (n.children.BinaryOp ?? []).filter(isToken);
    if (operands.length === 0) return this.placeholder();
    if (paramDefault && ops.length === 0) {
      const folded = this.negativeLiteral(operands[0]);
      if (folded) return folded;
    }
    const values: Expr[] = [this.operand(operands[0])];
    const pending: { op: BinaryOp; opSpan: Span }[] = [];
    const chained = new WeakSet<Expr>();
    const reduce = () => {
      const { op, opSpan } = pending.pop()!;
      const right = values.pop()!;
      const left = values.pop()!;
      const node: Expr = { kind: 'binary', op, left, right, opSpan, span: { start: left.span.start, end: right.span.end } };
      if (isComparison(op)) {
        if (chained.has(left)) {
          this.diagnostics.push(error('E010', opSpan, { op }, [help("combine the comparisons with '&&', as in a < b && b < c")]));
          markRecovered(node);
        }
        chained.add(node);
      }
      values.push(node);
    };
    for (let i = 0; i < ops.length && i + 1 < operands.length; i++) {
      const op = ops[i].image as BinaryOp;
      while (pending.length > 0 && PRECEDENCE[pending[pending.length - 1].op] >= PRECEDENCE[op]) reduce();
      pending.push({ op, opSpan: this.span(ops[i]) });
      values.push(this.operand(operands[i + 1]));
    }
    while (pending.length > 0) reduce();
    return values[0];
  }

  private negativeLiteral(o: CstNode): Expr | undefined {
    const prefix = (o.children.PrefixOp ?? []).filter(isToken);
    const num = this.tok(o, 'NumberLiteral');
    if (prefix.length !== 1 || prefix[0].image !== '-' || !num || Object.keys(o.children).length !== 2) return undefined;
    const minus = this.span(prefix[0]);
    const lit = this.number(num, true);
    return { ...lit, span: { start: minus.start, end: lit.span.end } };
  }

  /** operand := PREFIX_OP* atom; prefix operators apply innermost-last. */
  private operand(o: CstNode): Expr {
    const prefix = (o.children.PrefixOp ?? []).filter(isToken).map((t) => ({ op: t.image as UnaryOp, opSpan: this.span(t) }));
    let e = this.atom(o);
    for (let i = prefix.length - 1; i >= 0; i--) {
      const { op, opSpan } = prefix[i];
      e = { kind: 'unary', op, arg: e, opSpan, span: { start: opSpan.start, end: e.span.end } };
    }
    return e;
  }

  private atom(o: CstNode): Expr {
    const c = o.children;
    if (c.NumberLiteral) return this.number(this.tok(o, 'NumberLiteral')!, false);
    if (c.True || c.False) {
      const span = this.span(this.tok(o, c.True ? 'True' : 'False'));
      return { kind: 'bool', value: !!c.True, span };
    }
    if (c.If) {
      const start = this.span(this.tok(o, 'If')).start;
      const cond = this.expression(this.nodes(o, 'cond')[0]);
      const then = this.expression(this.nodes(o, 'then')[0]);
      const otherwise = this.expression(this.nodes(o, 'else')[0]);
      return { kind: 'if', cond, then, else: otherwise, span: { start, end: Math.max(otherwise.span.end, start) } };
    }
    if (c.inner || c.LParen) {
      // Parentheses are not a node; the span widens to include them so underlines look right.
      const open = this.span(this.tok(o, 'LParen'));
      const inner = this.expression(this.nodes(o, 'inner')[0]);
      const close = this.span(this.tok(o, 'RParen'));
      return { ...inner, span: { start: open.start, end: Math.max(close.end, inner.span.end) } };
    }
    const nameTok = this.tok(o, 'Identifier');
    if (!this.real(nameTok)) return this.placeholder();
    const nameSpan = this.span(nameTok);
    if (c.callOpen) {
      const args = this.nodes(o, 'args').map((a) => this.expression(a));
      const close = this.span(this.tok(o, 'callClose'));
      return { kind: 'call', fn: nameTok.image, args, fnSpan: nameSpan, span: { start: nameSpan.start, end: close.end } };
    }
    if (c.LBracket) {
      const index = this.expression(this.nodes(o, 'index')[0]);
      const close = this.span(this.tok(o, 'RBracket'));
      return { kind: 'index', table: nameTok.image, index, tableSpan: nameSpan, span: { start: nameSpan.start, end: close.end } };
    }
    return { kind: 'name', name: nameTok.image, span: nameSpan };
  }

  /** Number literals: validated here (E004-E006); a bad one becomes a marked placeholder. */
  private number(t: IToken, negated: boolean): Expr {
    const span = this.span(t);
    if (this.opts.placeholders.has(t)) return this.placeholder(span);
    const text = t.image;
    if (!VALID_NUMBER.test(text)) {
      const notes = /^\d+\.$/.test(text) ? [help(`write '${text}0'`)]
        : /^\.\d+$/.test(text) ? [help(`write '0${text}'`)]
        : /[eE][+-]?$/.test(text) ? [help('an exponent needs digits, as in 1e-3')] : [];
      this.diagnostics.push(error('E004', span, { text }, notes));
      return this.placeholder(span);
    }
    const isInt = /^\d+$/.test(text);
    const magnitude = Number(text);
    if (isInt && magnitude > I32_MAX + (negated ? 1 : 0)) {
      this.diagnostics.push(error('E005', span, { text: negated ? `-${text}` : text }, [help(`write '${text}.0' for an f32 value`)]));
      return this.placeholder(span);
    }
    if (!Number.isFinite(Math.fround(magnitude))) {
      this.diagnostics.push(error('E006', span, { text }, [help('the largest f32 is about 3.4e38')]));
      return this.placeholder(span);
    }
    const value = negated ? -magnitude : magnitude;
    return { kind: 'number', value, isInt, text: negated ? `-${text}` : text, span };
  }
}
