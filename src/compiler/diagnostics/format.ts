// Diagnostics as text, in the style of rustc and esbuild:
//
//   sia.attn:5:19: error E012: unknown name 'tua'
//       score = score * tua
//                       ^~~
//     = help: did you mean 'tau'?
//
// Lines and columns are 1-based; a column counts code points (a tab is one).
// The echoed line expands tabs and replaces invisible characters, so the
// caret line below it lines up in any terminal.
import type { Diagnostic } from './diagnostic.ts';

export interface SourceText {
  path: string;
  text: string;
}

export interface FormatOptions {
  color?: boolean;
}

const TAB_WIDTH = 4;
const INDENT = '    ';
/** Code points of a source line echoed at most. */
const MAX_ECHO = 100;
/** Diagnostics printed in full by formatDiagnostics; the summary still counts all. */
export const MAX_SHOWN = 100;

// Line starts of the last text seen: formatting or checking many diagnostics
// of one file then costs a binary search each, not a scan of the file.
let cachedText: string | undefined;
let cachedLineStarts: number[] = [];

function lineStarts(text: string): number[] {
  if (text !== cachedText) {
    cachedLineStarts = [0];
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) cachedLineStarts.push(i + 1);
    cachedText = text;
  }
  return cachedLineStarts;
}

/** 1-based line and column (in code points) of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number; lineStart: number } {
  const at = Math.max(0, Math.min(offset, text.length));
  const starts = lineStarts(text);
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= at) lo = mid;
    else hi = mid - 1;
  }
  const lineStart = starts[lo];
  return { line: lo + 1, column: codePoints(text.slice(lineStart, at)) + 1, lineStart };
}

const codePoints = (s: string) => Array.from(s).length;

/** Terminal width of one character as echoed: tabs expand, wide CJK and emoji take two cells. */
function displayChar(ch: string, column: number): { text: string; width: number } {
  if (ch === '\t') {
    const width = TAB_WIDTH - (column % TAB_WIDTH);
    return { text: ' '.repeat(width), width };
  }
  // Control, format (bidi overrides, zero-width) and other invisible characters.
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}\p{M}]/u.test(ch)) return { text: '\uFFFD', width: 1 };
  if (/[\p{Extended_Pictographic}\u1100-\u115F\u2E80-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6\u{20000}-\u{3FFFD}]/u.test(ch)) {
    return { text: ch, width: 2 };
  }
  return { text: ch, width: 1 };
}

/** The source line as echoed, plus the display column where each code point starts. */
function echoLine(line: string): { text: string; starts: number[]; width: number } {
  let text = '';
  let width = 0;
  const starts: number[] = [];
  for (const ch of line) {
    starts.push(width);
    const d = displayChar(ch, width);
    text += d.text;
    width += d.width;
  }
  return { text, starts, width };
}

const paint = (on: boolean, code: string, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

export function formatDiagnostic(d: Diagnostic, src: SourceText, opts: FormatOptions = {}): string {
  const color = !!opts.color;
  const { text } = src;
  const start = Math.max(0, Math.min(d.span.start, text.length));
  const { line, column, lineStart } = lineAndColumn(text, start);
  const newline = text.indexOf('\n', lineStart);
  const lineEnd = newline === -1 ? text.length : newline;
  const rawLine = text.slice(lineStart, lineEnd).replace(/\r$/, '');
  // A span that crosses lines is underlined to the end of its first line.
  const end = Math.max(start, Math.min(d.span.end, lineStart + rawLine.length));

  const severity = d.severity === 'error' ? paint(color, '1;31', 'error') : paint(color, '1;33', 'warning');
  const out = [`${src.path}:${line}:${column}: ${severity} ${d.code}: ${paint(color, '1', d.message)}`];

  if (text.length > 0) {
    const chars = Array.from(rawLine);
    const startCol = column - 1;
    const endCol = Math.max(startCol, codePoints(text.slice(lineStart, end)));
    // Very long lines (generated or minified specs) are cut to a window around the span.
    const from = chars.length > MAX_ECHO ? Math.max(0, Math.min(startCol - 20, chars.length - MAX_ECHO)) : 0;
    const to = Math.min(chars.length, from + MAX_ECHO);
    const lead = from > 0 ? '...' : '';
    const echo = echoLine(chars.slice(from, to).join(''));
    const at = (col: number) => lead.length + (col - from < echo.starts.length ? echo.starts[col - from] : echo.width);
    const left = at(startCol);
    const right = Math.max(left + 1, at(Math.min(endCol, to)));
    out.push(INDENT + lead + echo.text + (to < chars.length ? '...' : ''));
    out.push(INDENT + ' '.repeat(left) + paint(color, '1;31', '^' + '~'.repeat(right - left - 1)));
  }
  for (const n of d.notes ?? []) {
    const [kind, ...rest] = n.split(': ');
    const labelled = (kind === 'help' || kind === 'note') && rest.length > 0;
    out.push(`  = ${labelled ? `${paint(color, '1;36', kind)}: ${rest.join(': ')}` : `note: ${n}`}`);
  }
  return out.join('\n');
}

/** All diagnostics of one file, by position, then a summary line (`2 errors`, `1 error, 1 warning`). Empty input gives ''. */
export function formatDiagnostics(ds: readonly Diagnostic[], src: SourceText, opts: FormatOptions = {}): string {
  if (ds.length === 0) return '';
  const sorted = [...ds].sort((a, b) => a.span.start - b.span.start || a.span.end - b.span.end || a.code.localeCompare(b.code));
  const errors = ds.filter((d) => d.severity === 'error').length;
  const warnings = ds.length - errors;
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const summary = [errors > 0 ? count(errors, 'error') : '', warnings > 0 ? count(warnings, 'warning') : ''].filter(Boolean).join(', ');
  const shown = sorted.slice(0, MAX_SHOWN).map((d) => formatDiagnostic(d, src, opts));
  if (sorted.length > MAX_SHOWN) shown.push(`... and ${sorted.length - MAX_SHOWN} more`);
  return `${shown.join('\n\n')}\n\n${summary}\n`;
}
