// Lexer tokens of the attention DSL (see grammar/EBNF.md).
//
// Reserved words are only the ones the grammar needs to tell statements and
// expressions apart. Type names (i32, f32), axis names (heads, q_len, ...),
// `score` and `scale` are plain identifiers that the CST->AST step validates,
// so a misspelt type gets a precise message instead of "unexpected token",
// and names that are keywords elsewhere (var, fn, float, lambda) stay usable.
import type { TokenType } from 'chevrotain';
import { createToken, Lexer } from './chevrotain.ts';

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });

const keyword = (word: string): TokenType =>
  createToken({ name: word[0].toUpperCase() + word.slice(1), pattern: new RegExp(word), longer_alt: Identifier, label: `'${word}'` });

export const Attention = keyword('attention');
export const Param = keyword('param');
export const Input = keyword('input');
export const Let = keyword('let');
export const Mask = keyword('mask');
export const If = keyword('if');
export const Then = keyword('then');
export const Else = keyword('else');
export const True = keyword('true');
export const False = keyword('false');

export const KEYWORDS: readonly string[] = ['attention', 'param', 'input', 'let', 'mask', 'if', 'then', 'else', 'true', 'false'];

// Deliberately greedy: `1e`, `2.`, `3x` lex as one token so that CST->AST can
// say "invalid number literal '3x'" rather than two confusing syntax errors.
export const NumberLiteral = createToken({
  name: 'NumberLiteral',
  pattern: /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d*)?[A-Za-z0-9_.]*/,
  label: 'a number',
});

/** Statement separator: a significant newline or `;` (see significantNewlines in parse.ts). */
export const Sep = createToken({ name: 'Sep', pattern: Lexer.NA, label: "a newline or ';'" });
export const Newline = createToken({ name: 'Newline', pattern: /\n/, categories: Sep, label: 'end of line', line_breaks: true });
export const Semicolon = createToken({ name: 'Semicolon', pattern: /;/, categories: Sep, label: "';'" });

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\f\v]+/, group: Lexer.SKIPPED });
export const LineComment = createToken({ name: 'LineComment', pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });
export const BlockComment = createToken({ name: 'BlockComment', pattern: /\/\*[\s\S]*?\*\//, group: Lexer.SKIPPED, line_breaks: true });
/** A `/*` with no closing `*\/`: lexed as a token so parse.ts can report it (E003). */
export const UnterminatedComment = createToken({ name: 'UnterminatedComment', pattern: /\/\*[\s\S]*/, group: 'bad', line_breaks: true });

const punct = (name: string, text: string, categories?: TokenType[]): TokenType =>
  // chevrotain treats a present-but-undefined `categories` key as a category.
  createToken(categories ? { name, pattern: text, label: `'${text}'`, categories } : { name, pattern: text, label: `'${text}'` });

// Operator categories: the parser consumes a category, the CST->AST step reads the image.
/** Every binary operator; the parser sees only this category (precedence is applied in CST->AST). */
export const BinaryOp = createToken({ name: 'BinaryOp', pattern: Lexer.NA, label: 'an operator' });
export const OrOp = createToken({ name: 'OrOp', pattern: Lexer.NA, categories: BinaryOp, label: "'||'" });
export const AndOp = createToken({ name: 'AndOp', pattern: Lexer.NA, categories: BinaryOp, label: "'&&'" });
export const CompareOp = createToken({ name: 'CompareOp', pattern: Lexer.NA, categories: BinaryOp, label: 'a comparison' });
export const AdditiveOp = createToken({ name: 'AdditiveOp', pattern: Lexer.NA, categories: BinaryOp, label: "'+' or '-'" });
export const MultiplicativeOp = createToken({ name: 'MultiplicativeOp', pattern: Lexer.NA, categories: BinaryOp, label: "'*', '/' or '%'" });
export const PrefixOp = createToken({ name: 'PrefixOp', pattern: Lexer.NA, label: "'-' or '!'" });

export const OrOr = punct('OrOr', '||', [OrOp]);
export const AndAnd = punct('AndAnd', '&&', [AndOp]);
// A lone `&` or `|` is an error (E002) reported by parse.ts, but parses as
// `&&` / `||` so that one slip does not also derail the parser.
export const LoneAmp = punct('LoneAmp', '&', [AndOp]);
export const LonePipe = punct('LonePipe', '|', [OrOp]);
export const EqEq = punct('EqEq', '==', [CompareOp]);
export const NotEq = punct('NotEq', '!=', [CompareOp]);
export const LessEq = punct('LessEq', '<=', [CompareOp]);
export const GreaterEq = punct('GreaterEq', '>=', [CompareOp]);
export const Less = punct('Less', '<', [CompareOp]);
export const Greater = punct('Greater', '>', [CompareOp]);
export const Plus = punct('Plus', '+', [AdditiveOp]);
export const Minus = punct('Minus', '-', [AdditiveOp, PrefixOp]);
export const Star = punct('Star', '*', [MultiplicativeOp]);
export const Slash = punct('Slash', '/', [MultiplicativeOp]);
export const Percent = punct('Percent', '%', [MultiplicativeOp]);
export const Bang = punct('Bang', '!', [PrefixOp]);
export const Equals = punct('Equals', '=');
export const LCurly = punct('LCurly', '{');
export const RCurly = punct('RCurly', '}');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const Comma = punct('Comma', ',');
export const Colon = punct('Colon', ':');

/** Order matters: chevrotain takes the first pattern that matches, so longer operators come first. */
export const allTokens: TokenType[] = [
  WhiteSpace, Newline, LineComment, BlockComment, UnterminatedComment,
  Attention, Param, Input, Let, Mask, If, Then, Else, True, False,
  NumberLiteral, Identifier,
  OrOr, AndAnd, LoneAmp, LonePipe, EqEq, NotEq, LessEq, GreaterEq, Less, Greater,
  Plus, Minus, Star, Slash, Percent, Bang, Equals,
  LCurly, RCurly, LParen, RParen, LBracket, RBracket, Comma, Colon, Semicolon,
  Sep, BinaryOp, OrOp, AndOp, CompareOp, AdditiveOp, MultiplicativeOp, PrefixOp,
];

// Built once: constructing a chevrotain lexer analyses every pattern.
export const attnLexer = new Lexer(allTokens, { positionTracking: 'full' });
