// Text -> AST: lex, prepare the token stream, parse with error recovery,
// convert the CST. Never throws: every problem is a Diagnostic, and the AST
// holds whatever could be recovered (damaged parts marked, see cst-to-ast.ts).
//
//   1. size limit (E009)            4. parse (chevrotain, recovery on) (E001)
//   2. lex (E002, E003)             5. CST -> AST (E004-E006, E010, E011, E034, E035)
//   3. significant newlines; nesting and length limits (E007, E008)
import type { CstNode, IToken, TokenType } from 'chevrotain';
import { createTokenInstance, EOF } from '../../../grammar/chevrotain.ts';
import * as T from '../../../grammar/tokens.ts';
import { attnParser, resetAttnParser, TooManyErrors } from '../../../grammar/parser.ts';
import type { SpecFile } from './ast.ts';
import type { Diagnostic } from '../diagnostics/diagnostic.ts';
import { error, help, note } from '../diagnostics/catalog.ts';
import { CstToAst, markRecovered } from './cst-to-ast.ts';

export const MAX_FILE_BYTES = 1 << 20;
/** Parentheses, brackets, `if`s and prefix operators open at once. Keeps every recursive stage far from the JS stack limit. */
export const MAX_NESTING = 256;
/** Operators in one statement: bounds the depth of left-nested operator chains in the AST. */
export const MAX_OPERATORS = 1000;
/** Syntax errors past this many are dropped: after that, recovery is mostly guessing. */
const MAX_SYNTAX_ERRORS = 50;

export function parseSpec(path: string, text: string): { file: SpecFile; diagnostics: Diagnostic[] } {
  const file: SpecFile = { path, text, blocks: [] };
  const diagnostics: Diagnostic[] = [];
  try {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_FILE_BYTES) {
      diagnostics.push(error('E009', { start: 0, end: 0 }, { size: bytes, limit: MAX_FILE_BYTES }));
      markRecovered(file);
      return { file, diagnostics };
    }
    const tokens = lex(text, diagnostics);
    const placeholders = new Set<IToken>();
    const prepared = limitExpressions(significantNewlines(tokens), placeholders, diagnostics);
    const { csts, syntaxErrors, skippedTopLevel } = parseTokens(prepared, text);
    diagnostics.push(...withoutEchoes(syntaxErrors, diagnostics, tokens));
    if (skippedTopLevel) markRecovered(file);
    const converter = new CstToAst({ placeholders, errorOffsets: syntaxErrors.map((d) => d.span.start) });
    for (const cst of csts) file.blocks.push(...converter.blocks(cst));
    diagnostics.push(...converter.diagnostics);
    if (diagnostics.length > 0 && file.blocks.length === 0) markRecovered(file);
  } catch (e) {
    // A bug, not a user error; still a diagnostic so no input can crash the CLI or a test.
    resetAttnParser();
    markRecovered(file);
    diagnostics.push(error('E900', { start: 0, end: 0 }, { detail: e instanceof Error ? e.message : String(e) }));
  }
  diagnostics.sort((a, b) => a.span.start - b.span.start);
  return { file, diagnostics };
}

/**
 * A dropped character usually leaves a syntax error on the next token
 * (`1 é 2`): that one is an echo of the lexer error, not news.
 */
function withoutEchoes(syntaxErrors: Diagnostic[], lexical: Diagnostic[], tokens: IToken[]): Diagnostic[] {
  const echoes = new Set<number>();
  for (const d of lexical) {
    if (d.code !== 'E002') continue;
    const next = tokens[firstTokenAtOrAfter(tokens, d.span.end)];
    echoes.add(next ? next.startOffset : Infinity);
  }
  // Two messages at one token (e.g. a missing ')' and the missing separator after it): keep the first.
  const seen = new Set<number>();
  return syntaxErrors.filter((d) => !echoes.has(d.span.start) && !seen.has(d.span.start) && !!seen.add(d.span.start));
}

function firstTokenAtOrAfter(tokens: IToken[], offset: number): number {
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tokens[mid].startOffset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- 2. lexing --------------------------------------------------------------

function lex(text: string, diagnostics: Diagnostic[]): IToken[] {
  const result = T.attnLexer.tokenize(text);
  for (const e of result.errors.slice(0, MAX_SYNTAX_ERRORS)) diagnostics.push(unexpectedCharacter(text, e.offset, e.length));
  for (const t of result.tokens) {
    if (t.tokenType === T.LoneAmp || t.tokenType === T.LonePipe) {
      diagnostics.push(unexpectedCharacter(text, t.startOffset, 1));
      t.image = t.image + t.image;
    }
  }
  for (const t of result.groups.bad ?? []) {
    diagnostics.push(error('E003', { start: t.startOffset, end: t.startOffset + 2 }, {}, [note("the comment runs to the end of the file; close it with '*/'")]));
  }
  return result.tokens;
}

function unexpectedCharacter(text: string, offset: number, length: number): Diagnostic {
  const cp = text.codePointAt(offset) ?? 0;
  const ch = String.fromCodePoint(cp);
  const code = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  // Invisible or control characters are named by code point only, so the message itself stays printable.
  const visible = /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(ch);
  const notes: string[] = [];
  if (ch === '&' || ch === '|') notes.push(help(`did you mean '${ch}${ch}'?`));
  else if (ch === '"' || ch === "'") notes.push(note('the language has no strings'));
  else if (/^\p{L}$/u.test(ch)) notes.push(note('names are ASCII letters, digits and _'));
  else if (!visible) notes.push(note('an invisible or non-ASCII character, often from copy and paste'));
  return error('E002', { start: offset, end: offset + Math.max(1, length) }, { char: visible ? `'${ch}' (${code})` : code }, notes);
}

// ---- 3. token stream ----------------------------------------------------------

const ENDS_OPERAND = new Set<TokenType>([T.Identifier, T.NumberLiteral, T.True, T.False, T.RParen, T.RBracket]);
/** Tokens that can only start a statement or block: unbalanced brackets never leak past them. */
const STARTS_STATEMENT = new Set<TokenType>([T.Attention, T.Param, T.Input, T.Let, T.Mask, T.LCurly, T.RCurly]);

/** Tokens a statement (or the end of a block) can start with. */
const CAN_START_STATEMENT = new Set<TokenType>([T.Identifier, T.Param, T.Input, T.Let, T.Mask, T.Attention, T.RCurly, T.Semicolon]);

/**
 * Keep a newline only where it ends a statement: outside brackets, after a
 * token that can end an expression, and before a token that can start a
 * statement. So `a +\n b`, `\n else ...` and arguments split over lines
 * continue the statement, and blank lines vanish. (Joining is the only
 * possible reading there, so no newline the parser sees is ever deleted by
 * error recovery, which could otherwise nest without bound.)
 */
function significantNewlines(tokens: IToken[]): IToken[] {
  const out: IToken[] = [];
  let depth = 0;
  let nextSolid = 0; // index of the first non-newline token at or after i (kept monotone: linear time)
  tokens.forEach((t, i) => {
    const type = t.tokenType;
    if (type === T.Newline) {
      const prev = out[out.length - 1];
      if (nextSolid <= i) for (nextSolid = i + 1; nextSolid < tokens.length && tokens[nextSolid].tokenType === T.Newline;) nextSolid++;
      const next = tokens[nextSolid];
      const ends = depth === 0 && prev && ENDS_OPERAND.has(prev.tokenType) && (!next || CAN_START_STATEMENT.has(next.tokenType));
      if (ends) out.push(t);
      return;
    }
    if (STARTS_STATEMENT.has(type)) depth = 0;
    else if (type === T.LParen || type === T.LBracket) depth++;
    else if ((type === T.RParen || type === T.RBracket) && depth > 0) depth--;
    out.push(t);
  });
  return out;
}

const isBoundary = (t: IToken) => STARTS_STATEMENT.has(t.tokenType) || t.tokenType === T.Newline || t.tokenType === T.Semicolon;

/**
 * Enforce MAX_NESTING and MAX_OPERATORS per statement before the parser
 * recurses: an offending expression is replaced by one placeholder token, so
 * the rest of the file still parses and is checked.
 */
function limitExpressions(tokens: IToken[], placeholders: Set<IToken>, diagnostics: Diagnostic[]): IToken[] {
  const out: IToken[] = [];
  let i = 0;
  while (i < tokens.length) {
    if (isBoundary(tokens[i])) {
      out.push(tokens[i++]);
      continue;
    }
    let end = i;
    while (end < tokens.length && !isBoundary(tokens[end])) end++;
    const problem = measure(tokens, i, end);
    if (!problem) {
      for (let k = i; k < end; k++) out.push(tokens[k]);
    } else {
      diagnostics.push(problem.diagnostic);
      // Keep `NAME =` / `mask` so the statement (and the name it defines) survives.
      let exprStart = i;
      for (let k = i; k < end && k < i + 6; k++) if (tokens[k].tokenType === T.Equals) { exprStart = k + 1; break; }
      if (tokens[i].tokenType === T.Mask) exprStart = i + 1;
      for (let k = i; k < exprStart; k++) out.push(tokens[k]);
      const first = tokens[Math.min(exprStart, end - 1)];
      const last = tokens[end - 1];
      const stand = createTokenInstance(T.NumberLiteral, '0', first.startOffset, last.endOffset ?? last.startOffset,
        first.startLine ?? 1, last.endLine ?? 1, first.startColumn ?? 1, last.endColumn ?? 1);
      placeholders.add(stand);
      out.push(stand);
    }
    i = end;
  }
  return out;
}

/**
 * Upper bound of the nesting the parser and the AST would reach, tracked per
 * bracket frame: a frame costs 1, each `if` in it 1 (until `,` or the close),
 * each pending prefix operator 1 (until its operand ends).
 */
function measure(tokens: IToken[], from: number, to: number): { diagnostic: Diagnostic } | undefined {
  const frames = [{ ifs: 0, prefix: 0 }];
  let depth = 0;
  let operators = 0;
  let prev: TokenType | undefined;
  const endOperand = () => {
    const f = frames[frames.length - 1];
    depth -= f.prefix;
    f.prefix = 0;
  };
  for (let k = from; k < to; k++) {
    const t = tokens[k];
    const type = t.tokenType;
    const f = frames[frames.length - 1];
    const afterOperand = prev !== undefined && ENDS_OPERAND.has(prev);
    if (type === T.LParen || type === T.LBracket) {
      frames.push({ ifs: 0, prefix: 0 });
      depth++;
    } else if (type === T.RParen || type === T.RBracket) {
      if (frames.length > 1) {
        const g = frames.pop()!;
        depth -= 1 + g.ifs + g.prefix;
      }
      endOperand();
    } else if (type === T.Comma) {
      depth -= f.ifs + f.prefix;
      f.ifs = f.prefix = 0;
    } else if (type === T.If) {
      // Prefix operators before an `if` stay open for its whole extent.
      f.ifs += f.prefix + 1;
      f.prefix = 0;
      depth++;
    } else if (!afterOperand && (type === T.Minus || type === T.Bang)) {
      f.prefix++;
      depth++;
      operators++;
    } else if (T.BinaryOp.categoryMatchesMap?.[type.tokenTypeIdx!]) {
      operators++;
    } else if (type === T.NumberLiteral || type === T.True || type === T.False) {
      endOperand();
    } else if (type === T.Identifier) {
      const next = tokens[k + 1]?.tokenType;
      if (next !== T.LParen && next !== T.LBracket) endOperand();
    }
    prev = type;
    if (depth > MAX_NESTING) {
      return { diagnostic: error('E007', spanOf(t), { limit: MAX_NESTING }, [help('name intermediate values with let')]) };
    }
    if (operators > MAX_OPERATORS) {
      return { diagnostic: error('E008', spanOf(t), { limit: MAX_OPERATORS }, [help('split the expression into several let statements')]) };
    }
  }
  return undefined;
}

const spanOf = (t: IToken) => ({ start: t.startOffset, end: (t.endOffset ?? t.startOffset) + 1 });

// ---- 4. parsing ---------------------------------------------------------------

/**
 * Parse the token stream. Chevrotain stops at top-level junk (a token that
 * cannot start a block); then we report it, skip to the next `attention`
 * and go on, so errors in later blocks are still found.
 */
function parseTokens(tokens: IToken[], text: string): { csts: CstNode[]; syntaxErrors: Diagnostic[]; skippedTopLevel: boolean } {
  const parser = attnParser();
  const csts: CstNode[] = [];
  const syntaxErrors: Diagnostic[] = [];
  const seen = new Set<number>();
  let skippedTopLevel = false;
  let rest = tokens;
  while (rest.length > 0) {
    parser.input = rest;
    let aborted = false;
    try {
      csts.push(parser.specFile());
    } catch (e) {
      if (!(e instanceof TooManyErrors)) throw e;
      aborted = true;
      skippedTopLevel = true;
    }
    let resumeAfter: IToken | undefined;
    for (const e of parser.errors) {
      const t = e.token;
      // When the offending token is on a later line, the thing is missing at the end of the
      // previous one: point there (after `(1 + 2`, not at the next statement).
      const prev = (e as { previousToken?: IToken }).previousToken;
      const prevEnd = prev && Number.isFinite(prev.endOffset) && prev.tokenType !== EOF ? (prev.endOffset ?? 0) + 1 : undefined;
      const lineBreakBefore = prevEnd !== undefined && Number.isFinite(t.startOffset) && t.tokenType !== EOF && text.slice(prevEnd, t.startOffset).includes('\n');
      const at = lineBreakBefore ? prevEnd! : t.tokenType === EOF || !Number.isFinite(t.startOffset) ? endOfLastToken(rest, text) : t.startOffset;
      if (e.name === 'NotAllInputParsedException') resumeAfter = t;
      // Junk outside any block: the file as a whole is damaged (no "no block" error on top).
      if (e.context.ruleStack.length <= 1) skippedTopLevel = true;
      if (seen.has(at) || syntaxErrors.length >= MAX_SYNTAX_ERRORS) continue;
      seen.add(at);
      const end = lineBreakBefore || t.tokenType === EOF || t.tokenType === T.Newline || !Number.isFinite(t.startOffset) ? at : (t.endOffset ?? at) + 1;
      syntaxErrors.push(error('E001', { start: at, end }, { detail: e.message }));
    }
    if (aborted) {
      const last = syntaxErrors[syntaxErrors.length - 1];
      if (last) last.notes = [...(last.notes ?? []), note('too many syntax errors; the rest of the file was not read')];
      break;
    }
    if (!resumeAfter) break;
    const from = rest.indexOf(resumeAfter);
    let next = from + 1;
    while (next < rest.length && rest[next].tokenType !== T.Attention) next++;
    rest = rest.slice(next);
  }
  return { csts, syntaxErrors, skippedTopLevel };
}

/** Where "found end of file" points: just after the last real token, not after trailing blank lines. */
function endOfLastToken(tokens: IToken[], text: string): number {
  for (let k = tokens.length - 1; k >= 0; k--) {
    const t = tokens[k];
    if (t.tokenType !== T.Newline && Number.isFinite(t.endOffset)) return (t.endOffset ?? t.startOffset) + 1;
  }
  return text.trimEnd().length;
}
