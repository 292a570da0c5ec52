// The canonical pretty printer: one statement per line, two-space indent,
// parentheses only where precedence needs them (plus around `if` inside an
// operator, whose else-branch would otherwise swallow what follows).
// parseSpec(printSpec(ast)) gives back the same AST, spans aside; the
// round-trip property test in tests/parse holds it to that.
import type { AttentionBlock, Expr, SpecFile, Stmt } from './ast.ts';
import { assertNever } from './ast.ts';
import { binaryPrecedence, isComparison } from './cst-to-ast.ts';

export function printSpec(file: SpecFile): string {
  return file.blocks.map(printBlock).join('\n');
}

export function printBlock(block: AttentionBlock): string {
  const body = block.body.map((s) => `  ${printStmt(s)}\n`).join('');
  return `attention ${block.name} {\n${body}}\n`;
}

export function printStmt(s: Stmt): string {
  switch (s.kind) {
    case 'param': {
      // `param x = 5` means f32; the annotation is printed only for i32.
      const type = s.type === 'i32' ? ': i32' : '';
      // A folded negative default prints as `-5`, which parses back to the same literal.
      const value = s.default.kind === 'number' ? s.default.text : printExpr(s.default);
      return `param ${s.name}${type} = ${value}`;
    }
    case 'input':
      return `input ${s.name}: ${s.elem}[${s.axis}]`;
    case 'let':
      return `let ${s.name} = ${printExpr(s.value)}`;
    case 'assign':
      return `${s.target} = ${printExpr(s.value)}`;
    case 'mask':
      return `mask ${printExpr(s.cond)}`;
    default:
      return assertNever(s, 'statement');
  }
}

const UNARY_PRECEDENCE = 6;
const ATOM_PRECEDENCE = 7;

function precedence(e: Expr): number {
  switch (e.kind) {
    case 'binary': return binaryPrecedence(e.op);
    case 'unary': return UNARY_PRECEDENCE;
    // A negative literal (only a param default makes one) reads as unary minus.
    case 'number': return e.value < 0 || e.text.startsWith('-') ? UNARY_PRECEDENCE : ATOM_PRECEDENCE;
    case 'if': return 0;
    default: return ATOM_PRECEDENCE;
  }
}

const wrap = (s: string, yes: boolean) => (yes ? `(${s})` : s);

/** Print an expression; recursion depth is the AST's, which parse.ts bounds. */
export function printExpr(e: Expr): string {
  switch (e.kind) {
    case 'number':
      return e.text;
    case 'bool':
      return e.value ? 'true' : 'false';
    case 'name':
      return e.name;
    case 'unary':
      // `-(-x)` rather than `--x`; `-(a + b)`; `-(if ...)`.
      return `${e.op}${wrap(printExpr(e.arg), precedence(e.arg) <= UNARY_PRECEDENCE)}`;
    case 'binary': {
      const p = binaryPrecedence(e.op);
      // Left-associative: the left operand may share the precedence, except
      // comparisons, which do not chain.
      const leftParens = precedence(e.left) < p || (isComparison(e.op) && precedence(e.left) === p);
      const rightParens = precedence(e.right) <= p;
      return `${wrap(printExpr(e.left), leftParens)} ${e.op} ${wrap(printExpr(e.right), rightParens)}`;
    }
    case 'call':
      return `${e.fn}(${e.args.map(printExpr).join(', ')})`;
    case 'index':
      return `${e.table}[${printExpr(e.index)}]`;
    case 'if':
      return `if ${printExpr(e.cond)} then ${printExpr(e.then)} else ${printExpr(e.else)}`;
    default:
      return assertNever(e, 'expression');
  }
}
