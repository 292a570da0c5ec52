// The one catalog of diagnostic codes. Every diagnostic the front end emits is
// built here, so codes, wording and severities live in one reviewable list
// (TypeScript's diagnosticMessages.json). Codes are never reused or renumbered;
// tests/errors/ holds at least one failing spec per code.
import type { Span } from '../syntax/ast.ts';
import type { Diagnostic } from './diagnostic.ts';

export const CATALOG = {
  E001: 'syntax error: {detail}',
  E002: 'unexpected character {char}',
  E003: 'unterminated block comment',
  E004: "invalid number literal '{text}'",
  E005: 'integer literal {text} does not fit in i32',
  E006: 'number literal {text} is too large for f32',
  E007: 'expression nested too deeply (limit {limit})',
  E008: 'expression too long (limit {limit} operators)',
  E009: 'file too large ({size} bytes; limit {limit} bytes)',
  E010: "comparison operators do not chain: '{op}' after another comparison",
  E011: "unknown type '{name}': expected {expected}",
  E012: "unknown name '{name}'",
  E013: "unknown function '{name}'",
  E014: "'{name}' takes {expected}, found {found}",
  E015: "'{name}' is defined twice",
  E016: "cannot redefine built-in name '{name}'",
  E017: "operator '{op}' expects {expected}, found {found}",
  E018: 'the condition of if must be bool, found {found}',
  E019: 'the branches of if must be both bool or both numbers, found {a} and {b}',
  E020: "'{name}' expects {expected}, found {found}",
  E021: 'mask must be bool, found {found}',
  E022: 'score must be a number, found {found}',
  E023: 'scale must be a number, found {found}',
  E024: 'scale must not depend on score',
  E025: "'{name}' is not an input and cannot be indexed",
  E026: "input '{name}' must be indexed, as in {name}[{hint}]",
  E027: 'an index must be i32, found {found}',
  E028: "the default of param '{name}' must be a number literal",
  E029: "the default of i32 param '{name}' must be an integer literal, found {found}",
  E030: "attention block '{name}' is defined twice",
  E031: "no 'attention' block in this file",
  E032: 'this file has several attention blocks; choose one with --entry: {names}',
  E033: "no attention block named '{name}'",
  E034: "unknown axis '{name}': expected heads, batch, q_len or kv_len",
  E035: "cannot assign to '{name}': only score and scale can be assigned",
  /** Not reachable by a spec: a bug caught at the front end's outer boundary. */
  E900: 'internal compiler error: {detail}',
} as const;

export type DiagnosticCode = keyof typeof CATALOG;

/** Codes that no user input should ever produce (excluded from the coverage test). */
export const UNREACHABLE_CODES: readonly DiagnosticCode[] = ['E900'];

/** Fill `{key}` placeholders of a catalog template. Unknown keys are left visible, which a test catches. */
export function render(code: DiagnosticCode, args: Record<string, string | number> = {}): string {
  return CATALOG[code].replace(/\{(\w+)\}/g, (whole, key: string) => (key in args ? String(args[key]) : whole));
}

export function error(code: DiagnosticCode, span: Span, args: Record<string, string | number> = {}, notes?: string[]): Diagnostic {
  const d: Diagnostic = { code, severity: 'error', span: { start: span.start, end: span.end }, message: render(code, args) };
  if (notes && notes.length > 0) d.notes = notes;
  return d;
}

/** Notes are printed as `= help: ...` / `= note: ...`; the prefix is part of the note. */
export const help = (text: string) => `help: ${text}`;
export const note = (text: string) => `note: ${text}`;
