// The grammar of the attention DSL as a pure chevrotain CstParser: it only
// builds a concrete syntax tree; meaning (precedence folding, validation of
// type and axis names, literals) lives in src/compiler/syntax/cst-to-ast.ts.
//
// Newlines reach the parser only where they end a statement: parse.ts drops
// the others (inside brackets, after an operator), so expressions may span
// lines and the grammar below stays LL(1).
import type { CstParser as CstParserType, IParserErrorMessageProvider, IRecognitionException, IToken, TokenType } from 'chevrotain';
import { CstParser, EOF } from './chevrotain.ts';
import * as T from './tokens.ts';

/** How a rule is called in "expected ..." messages. */
const RULE_DESCRIPTIONS: Record<string, string> = {
  specFile: "'attention'",
  block: "'attention'",
  statement: 'a statement (param, input, let, score =, scale =, mask)',
  typeAnnotation: "a type",
  expression: 'an expression',
  operand: 'an expression',
};

export function describeToken(t: IToken): string {
  if (t.tokenType === EOF) return 'end of file';
  if (t.tokenType === T.Newline) return 'end of line';
  const image = t.image.length > 20 ? `${t.image.slice(0, 20)}...` : t.image;
  return `'${image}'`;
}

function label(t: TokenType): string {
  return t.LABEL ?? t.name;
}

function oneOf(items: string[]): string {
  const unique = [...new Set(items)];
  if (unique.length <= 1) return unique[0] ?? 'something else';
  return `${unique.slice(0, -1).join(', ')} or ${unique[unique.length - 1]}`;
}

/** Messages in the form "expected X, found Y" (E001); parse.ts wraps them into diagnostics. */
export const errorMessages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual, ruleName }) => {
    // At top level chevrotain expects EOF where, for a user, only a new block may follow;
    // in a block, '}' is only one of the things that may come next.
    const what = expected === EOF ? "'attention'"
      : expected === T.RCurly && ruleName === 'block' ? "a statement, a newline or '}'"
      : label(expected);
    return `expected ${what}, found ${describeToken(actual)}`;
  },
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `expected 'attention', found ${describeToken(firstRedundant)}`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual, ruleName }) => {
    const described = RULE_DESCRIPTIONS[ruleName];
    const firsts = expectedPathsPerAlt.flatMap((alt) => alt.map((path) => (path[0] ? label(path[0]) : '')));
    return `expected ${described ?? oneOf(firsts)}, found ${describeToken(actual[0])}`;
  },
  buildEarlyExitMessage: ({ expectedIterationPaths, actual }) =>
    `expected ${oneOf(expectedIterationPaths.map((p) => (p[0] ? label(p[0]) : '')))}, found ${describeToken(actual[0])}`,
};

/** Thrown out of a parse that has recorded MAX_PARSE_ERRORS errors (see SAVE_ERROR). */
export class TooManyErrors extends Error {}
/** Recovery on garbage costs time per error; past this many the parse is abandoned. */
export const MAX_PARSE_ERRORS = 100;

type SaveError = (this: CstParserType, e: IRecognitionException) => IRecognitionException;
const chevrotainSaveError = (CstParser.prototype as unknown as { SAVE_ERROR: SaveError }).SAVE_ERROR;

export class AttnParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, errorMessageProvider: errorMessages, maxLookahead: 2 });
    this.performSelfAnalysis();
  }

  /**
   * Chevrotain records every error through this (internal, but stable) hook.
   * Stopping after MAX_PARSE_ERRORS bounds the time spent on garbage input.
   */
  SAVE_ERROR(e: IRecognitionException): IRecognitionException {
    if (this.errors.length >= MAX_PARSE_ERRORS) throw new TooManyErrors('too many syntax errors');
    return chevrotainSaveError.call(this, e);
  }

  // file := block*
  public specFile = this.RULE('specFile', () => {
    this.MANY(() => this.SUBRULE(this.block));
  });

  // block := 'attention' NAME '{' (statement | SEP)* '}'
  // Two statements need a separator between them; CST->AST checks that
  // (E001), which recovers better than encoding it here: a missing newline
  // costs one message and the following statements still parse.
  public block = this.RULE('block', () => {
    this.CONSUME(T.Attention);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LCurly);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Sep) },
        { ALT: () => this.SUBRULE(this.statement) },
      ]);
    });
    this.CONSUME(T.RCurly);
  });

  public statement = this.RULE('statement', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.paramStmt) },
      { ALT: () => this.SUBRULE(this.inputStmt) },
      { ALT: () => this.SUBRULE(this.letStmt) },
      { ALT: () => this.SUBRULE(this.maskStmt) },
      { ALT: () => this.SUBRULE(this.assignStmt) },
    ]);
  });

  // paramStmt := 'param' NAME (':' TYPE)? '=' expression   (a number; checked later)
  public paramStmt = this.RULE('paramStmt', () => {
    this.CONSUME(T.Param);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.typeAnnotation));
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression);
  });

  public typeAnnotation = this.RULE('typeAnnotation', () => {
    this.CONSUME(T.Colon);
    this.CONSUME(T.Identifier);
  });

  // inputStmt := 'input' NAME ':' TYPE '[' AXIS ']'
  public inputStmt = this.RULE('inputStmt', () => {
    this.CONSUME(T.Input);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.CONSUME2(T.Identifier);
    this.CONSUME(T.LBracket);
    this.CONSUME3(T.Identifier);
    this.CONSUME(T.RBracket);
  });

  public letStmt = this.RULE('letStmt', () => {
    this.CONSUME(T.Let);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression);
  });

  public maskStmt = this.RULE('maskStmt', () => {
    this.CONSUME(T.Mask);
    this.SUBRULE(this.expression);
  });

  // assignStmt := NAME '=' expression   (NAME must be score or scale; checked later)
  public assignStmt = this.RULE('assignStmt', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expression);
  });

  // expression := operand (BINARY_OP operand)*
  // Flat on purpose: precedence (|| < && < comparison < + - < * / %) is
  // applied by CST->AST with an operator-precedence loop, and `operand`
  // inlines every kind of atom. Each nested parenthesis then costs two rule
  // calls; with one rule per precedence level chevrotain's recursion
  // overflowed the JS stack below the nesting limit (256) that parse.ts enforces.
  public expression = this.RULE('expression', () => {
    this.SUBRULE(this.operand);
    this.MANY(() => {
      this.CONSUME(T.BinaryOp);
      this.SUBRULE2(this.operand);
    });
  });

  // operand := PREFIX_OP* atom
  // atom    := NUMBER | 'true' | 'false' | '(' expression ')'
  //          | 'if' expression 'then' expression 'else' expression
  //          | NAME | NAME '(' (expression (',' expression)*)? ')' | NAME '[' expression ']'
  // A run of prefix operators is a loop, not recursion. `if` is an atom whose
  // else-branch extends as far right as possible, so
  // `1 + if c then 2 else 3 + 4` is `1 + (if c then 2 else (3 + 4))`.
  public operand = this.RULE('operand', () => {
    this.MANY(() => this.CONSUME(T.PrefixOp));
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLiteral) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      {
        ALT: () => {
          this.CONSUME(T.If);
          this.SUBRULE(this.expression, { LABEL: 'cond' });
          this.CONSUME(T.Then);
          this.SUBRULE2(this.expression, { LABEL: 'then' });
          this.CONSUME(T.Else);
          this.SUBRULE3(this.expression, { LABEL: 'else' });
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE4(this.expression, { LABEL: 'inner' });
          this.CONSUME(T.RParen);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Identifier);
          this.OPTION(() => {
            this.OR2([
              {
                ALT: () => {
                  this.CONSUME2(T.LParen, { LABEL: 'callOpen' });
                  this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE5(this.expression, { LABEL: 'args' }) });
                  this.CONSUME2(T.RParen, { LABEL: 'callClose' });
                },
              },
              {
                ALT: () => {
                  this.CONSUME(T.LBracket);
                  this.SUBRULE6(this.expression, { LABEL: 'index' });
                  this.CONSUME(T.RBracket);
                },
              },
            ]);
          });
        },
      },
    ]);
  });
}

/** One shared instance: performSelfAnalysis is expensive, and `input` resets all state. */
let instance: AttnParser | undefined;
export function attnParser(): AttnParser {
  instance ??= new AttnParser();
  return instance;
}

/** Drop the shared instance (after an unexpected exception may have left it mid-parse). */
export function resetAttnParser(): void {
  instance = undefined;
}
