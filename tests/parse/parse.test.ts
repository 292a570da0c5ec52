// What the parser makes of specific inputs: precedence, newlines, literals, spans.
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/compiler/syntax/parse.ts';
import { printExpr } from '../../src/compiler/syntax/print.ts';
import type { Expr, Stmt } from '../../src/compiler/syntax/ast.ts';

function body(src: string): Stmt[] {
  const { file, diagnostics } = parseSpec('t.attn', `attention a {\n${src}\n}`);
  expect(diagnostics).toEqual([]);
  return file.blocks[0].body;
}

/** Fully parenthesised rendering, to read precedence off a test. */
function shape(e: Expr): string {
  switch (e.kind) {
    case 'binary': return `(${shape(e.left)} ${e.op} ${shape(e.right)})`;
    case 'unary': return `(${e.op}${shape(e.arg)})`;
    case 'if': return `(if ${shape(e.cond)} then ${shape(e.then)} else ${shape(e.else)})`;
    case 'call': return `${e.fn}(${e.args.map(shape).join(', ')})`;
    case 'index': return `${e.table}[${shape(e.index)}]`;
    default: return printExpr(e);
  }
}
const expr = (src: string) => shape((body(`let x = ${src}`)[0] as { value: Expr }).value);

describe('expressions', () => {
  it('follow the precedence of DSL.md', () => {
    expect(expr('a || b && c == d + e * -f')).toBe('(a || (b && (c == (d + (e * (-f))))))');
    expect(expr('a - b - c')).toBe('((a - b) - c)');
    expect(expr('a / b % c * d')).toBe('(((a / b) % c) * d)');
    expect(expr('!a && b')).toBe('((!a) && b)');
    expect(expr('- -a')).toBe('(-(-a))');
  });

  it('let if extend as far right as possible', () => {
    expect(expr('1 + if c then 2 else 3 + 4')).toBe('(1 + (if c then 2 else (3 + 4)))');
    expect(expr('(if c then 2 else 3) + 4')).toBe('((if c then 2 else 3) + 4)');
  });

  it('parse calls and table reads', () => {
    expect(expr('clamp(x, -1, f[q_idx])')).toBe('clamp(x, (-1), f[q_idx])');
    expect(expr('f()')).toBe('f()');
  });

  it('read number literals', () => {
    const lits = ['10', '10.0', '1e-3', '2.5E+2'].map((t) => (body(`let x = ${t}`)[0] as { value: Expr }).value);
    expect(lits.map((e) => e.kind === 'number' && [e.value, e.isInt])).toEqual([[10, true], [10, false], [0.001, false], [250, false]]);
  });
});

describe('statements', () => {
  it('fold a leading minus into a param default', () => {
    const [p] = body('param w: i32 = -3');
    expect(p.kind === 'param' && p.default).toMatchObject({ kind: 'number', value: -3, isInt: true, text: '-3' });
  });

  it('are separated by newlines or semicolons; operators and else continue a line', () => {
    const stmts = body('let a = 1; let b = 2\n\n  let c = a +\n    b\n  score = if causal\n    then score\n    else score * 2.0');
    expect(stmts.map((s) => s.kind)).toEqual(['let', 'let', 'let', 'assign']);
  });

  it('carry spans of the source text', () => {
    const text = 'attention a {\n  let tau = q_idx - kv_idx\n}';
    const s = parseSpec('t', text).file.blocks[0].body[0];
    expect(s.kind === 'let' && text.slice(s.nameSpan.start, s.nameSpan.end)).toBe('tau');
    expect(s.kind === 'let' && text.slice(s.value.span.start, s.value.span.end)).toBe('q_idx - kv_idx');
    const paren = parseSpec('t', 'attention a { let x = (1 + 2) * 3 }');
    const v = paren.file.blocks[0].body[0];
    expect(v.kind === 'let' && v.value.kind === 'binary' && paren.file.text.slice(v.value.left.span.start, v.value.left.span.end)).toBe('(1 + 2)');
  });
});

describe('recovery', () => {
  it('reports several syntax errors and keeps the good statements', () => {
    const { file, diagnostics } = parseSpec('t', 'attention a {\n let x = (1\n let y = 2 +\n mask causal\n}\nattention b { let z = }');
    expect(diagnostics.map((d) => d.code)).toEqual(['E001', 'E001', 'E001']);
    expect(file.blocks.map((b) => b.name)).toEqual(['a', 'b']);
  });

  it('reports a lone & once and parses it as &&', () => {
    const { file, diagnostics } = parseSpec('t', 'attention a { mask causal & true }');
    expect(diagnostics.map((d) => d.code)).toEqual(['E002']);
    const m = file.blocks[0].body[0];
    expect(m.kind === 'mask' && m.cond.kind === 'binary' && m.cond.op).toBe('&&');
  });

  it('gives the column of an unexpected character in code points', () => {
    const { diagnostics } = parseSpec('t', 'attention a { let \u{1F600} = 1 }');
    expect(diagnostics[0]).toMatchObject({ code: 'E002', span: { start: 18, end: 20 } });
  });
});
