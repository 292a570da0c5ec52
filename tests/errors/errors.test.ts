// Specs that must fail, each with its expected output in a golden file next
// to it (Halide's test/error, TypeScript's baselines). `UPDATE_GOLDEN=1 npx
// vitest run tests/errors` rewrites the golden files; review them in the diff.
//
// A first line `// entry: NAME` (or `// entry:` for none) also runs block
// selection, as `--entry` does.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSpec, MAX_FILE_BYTES } from '../../src/compiler/syntax/parse.ts';
import { checkSpec, selectBlock } from '../../src/compiler/check/check.ts';
import { formatDiagnostic, formatDiagnostics } from '../../src/compiler/diagnostics/format.ts';
import { CATALOG, UNREACHABLE_CODES, type DiagnosticCode } from '../../src/compiler/diagnostics/catalog.ts';
import type { Diagnostic } from '../../src/compiler/diagnostics/diagnostic.ts';
import { expectGolden } from '../golden-file.ts';

const DIR = dirname(fileURLToPath(import.meta.url));

function diagnose(path: string, text: string): Diagnostic[] {
  const { file, diagnostics } = parseSpec(path, text);
  const all = [...diagnostics, ...checkSpec(file)];
  const entry = /^\/\/ entry:(.*)$/m.exec(text.split('\n')[0] ?? '');
  if (entry) {
    const name = entry[1].trim();
    const selected = selectBlock(file, name === '' ? undefined : name);
    if ('diagnostic' in selected) all.push(selected.diagnostic);
  }
  return all;
}

/** Specs built in memory (too big to commit), with their golden files in this folder. */
const GENERATED: Record<string, () => string> = {
  'generated_too_large.attn': () => `attention a {\n${'  mask causal\n'.repeat(Math.ceil(MAX_FILE_BYTES / 14) + 10)}}\n`,
};

const specs = readdirSync(DIR).filter((f) => f.endsWith('.attn')).sort();
const seenCodes = new Set<string>();

function golden(name: string, text: string) {
  const diagnostics = diagnose(name, text);
  for (const d of diagnostics) seenCodes.add(d.code);
  const actual = formatDiagnostics(diagnostics, { path: name, text });
  const file = join(DIR, name.replace(/\.attn$/, '.expected'));
  expect(diagnostics.length, 'a spec in tests/errors must fail').toBeGreaterThan(0);
  expectGolden(file, actual);
  for (const d of diagnostics) expect(d.message, 'unfilled placeholder in a catalog message').not.toMatch(/\{\w+\}/);
}

describe('specs that must fail', () => {
  for (const name of specs) it(name, () => golden(name, readFileSync(join(DIR, name), 'utf8')));
  for (const [name, make] of Object.entries(GENERATED)) it(name, () => golden(name, make()));

  it('exercise every code in the catalog', () => {
    const missing = (Object.keys(CATALOG) as DiagnosticCode[]).filter((c) => !seenCodes.has(c) && !UNREACHABLE_CODES.includes(c));
    expect(missing).toEqual([]);
  });
});

describe('formatDiagnostic', () => {
  const d = (start: number, end: number, notes?: string[]): Diagnostic => ({ code: 'E012', severity: 'error', span: { start, end }, message: 'm', notes });

  it('counts columns in code points and lines up the caret after tabs and wide characters', () => {
    const text = 'a\n\t\u00e9\u{1F600} xyz\n';
    const at = text.indexOf('xyz');
    expect(formatDiagnostic(d(at, at + 3, ['help: did you mean it?']), { path: 'f', text })).toBe(
      'f:2:5: error E012: m\n        \u00e9\u{1F600} xyz\n            ^~~\n  = help: did you mean it?');
  });

  it('underlines a span that crosses lines to the end of its first line', () => {
    const text = 'let x = (1 +\n  2)\n';
    expect(formatDiagnostic(d(8, 17), { path: 'f', text }).split('\n').slice(1)).toEqual(['    let x = (1 +', '            ^~~~']);
  });

  it('points after the last character for an empty span at the end of a line or file', () => {
    expect(formatDiagnostic(d(5, 5), { path: 'f', text: 'mask ' }).split('\n')[2]).toBe('         ^');
    expect(formatDiagnostic(d(3, 3), { path: 'f', text: 'abc\n' })).toMatch(/^f:1:4:/);
  });

  it('handles CRLF line ends, an empty file and spans out of range', () => {
    expect(formatDiagnostic(d(5, 6), { path: 'f', text: 'a\r\nb c\r\n' })).toBe('f:2:3: error E012: m\n    b c\n      ^');
    expect(formatDiagnostic(d(0, 0), { path: 'f', text: '' })).toBe('f:1:1: error E012: m');
    expect(() => formatDiagnostic(d(100, 200), { path: 'f', text: 'abc' })).not.toThrow();
  });

  it('cuts very long lines to a window around the span', () => {
    const text = `${'x + '.repeat(500)}y`;
    const lines = formatDiagnostic(d(text.length - 1, text.length), { path: 'f', text }).split('\n');
    expect(lines[1].length).toBeLessThan(120);
    expect(lines[2].indexOf('^')).toBe(lines[1].indexOf('y'));
  });

  it('sorts by position, colours on request and ends with a summary', () => {
    const text = 'ab';
    const out = formatDiagnostics([d(1, 2), d(0, 1)], { path: 'f', text });
    expect(out.indexOf('f:1:1')).toBeLessThan(out.indexOf('f:1:2'));
    expect(out.endsWith('\n2 errors\n')).toBe(true);
    expect(formatDiagnostics([d(0, 1)], { path: 'f', text }, { color: true })).toContain('\x1b[1;31merror\x1b[0m');
    expect(formatDiagnostics([], { path: 'f', text })).toBe('');
  });
});
