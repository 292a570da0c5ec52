// The front end never throws and never overflows the stack, whatever the input.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseSpec, MAX_FILE_BYTES } from '../../src/compiler/syntax/parse.ts';
import { checkSpec } from '../../src/compiler/check/check.ts';
import { formatDiagnostics } from '../../src/compiler/diagnostics/format.ts';

const VALID = `// Scale-invariant attention.
attention scale_invariant {
  param tau = 10.0
  param window: i32 = 1024
  input slopes: f32[heads]
  let t = q_idx - kv_idx
  let l = log1p(t / tau)
  score = score * sqrt(2 * l + 1) - 2 * l - slopes[head] * t
  mask causal && (t < window || if kv_idx < 4 then true else false)
}
`;

/** Everything a user-facing run does with a text: parse, check, format. */
function frontEnd(text: string) {
  const { file, diagnostics } = parseSpec('fuzz.attn', text);
  const all = [...diagnostics, ...checkSpec(file)];
  formatDiagnostics(all, { path: 'fuzz.attn', text });
  formatDiagnostics(all, { path: 'fuzz.attn', text }, { color: true });
  return all;
}

const codes = (text: string) => frontEnd(text).map((d) => d.code);

describe('robustness', () => {
  it('never throws on arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
      expect(codes(s)).not.toContain('E900');
    }), { seed: 7, numRuns: 300 });
  });

  it('never throws on token soup', () => {
    const piece = fc.constantFrom('attention', 'a', '{', '}', '(', ')', '[', ']', 'let', 'x', '=', '1', '2.5', '+', '-', '!', '<', '&&',
      'if', 'then', 'else', 'mask', 'param', ':', 'i32', 'input', 'f32', 'heads', ',', ';', '\n', 'score', 'exp', '/*', '*/', '//', 'é');
    fc.assert(fc.property(fc.array(piece, { maxLength: 80 }), (ps) => {
      expect(codes(ps.join(' '))).not.toContain('E900');
    }), { seed: 11, numRuns: 400 });
  });

  it('never throws on mutations of a valid spec', () => {
    const mutation = fc.tuple(fc.nat(VALID.length), fc.nat(8), fc.string({ unit: 'grapheme', maxLength: 4 }));
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
      let text = VALID;
      for (const [at, del, ins] of ms) text = text.slice(0, at) + ins + text.slice(at + del);
      expect(codes(text)).not.toContain('E900');
    }), { seed: 42, numRuns: 300 });
  });

  it('accepts the valid spec used for mutations', () => {
    expect(codes(VALID)).toEqual([]);
  });

  const deep = {
    parentheses: (n: number) => `${'('.repeat(n)}1${')'.repeat(n)}`,
    'unclosed parentheses': (n: number) => `${'('.repeat(n)}1`,
    'unary minus': (n: number) => `${'-'.repeat(n)}1`,
    negation: (n: number) => `${'!'.repeat(n)}true`,
    'if/then/else in the condition': (n: number) => `${'if '.repeat(n)}true${' then 1 else 2'.repeat(n)}`,
    'else if chains': (n: number) => `${'if true then 1 else '.repeat(n)}2`,
    calls: (n: number) => `${'abs('.repeat(n)}1${')'.repeat(n)}`,
    'minus before calls': (n: number) => `${'-abs('.repeat(n)}1${')'.repeat(n)}`,
    indexing: (n: number) => `${'t['.repeat(n)}1${']'.repeat(n)}`,
  };
  for (const [what, make] of Object.entries(deep)) {
    it(`reports 10 000-deep ${what} as E007, and keeps checking the rest`, () => {
      const text = `attention a {\n  let x = ${make(10_000)}\n  mask y\n}\n`;
      const got = codes(text);
      expect(got[0]).toBe('E007');
      expect(got).toContain('E012'); // `y` is still checked: the deep statement did not end the run
      expect(got).not.toContain('E900');
    });
  }

  it('accepts nesting just under the limit', () => {
    const text = `attention a {\n  let x = ${'('.repeat(250)}1${')'.repeat(250)} + ${'abs('.repeat(250)}1${')'.repeat(250)}\n}\n`;
    expect(codes(text)).toEqual([]);
  });

  it('limits the length of one expression (E008) without deep recursion afterwards', () => {
    const text = `attention a {\n  score = ${Array(200_000).fill('1').join(' + ')}\n}\n`;
    expect(codes(text)).toEqual(['E008']);
  });

  it('rejects files over 1 MB (E009)', () => {
    const text = `attention a {\n${'  let x = 1\n'.repeat(MAX_FILE_BYTES / 10)}}\n`;
    expect(codes(text)).toEqual(['E009']);
  });

  it('stops after too many syntax errors, quickly, and says so', () => {
    const start = performance.now();
    const got = frontEnd('attention '.repeat(50_000));
    expect(performance.now() - start).toBeLessThan(5000);
    expect(got.length).toBeLessThanOrEqual(50);
    expect(got[got.length - 1].notes?.join()).toContain('too many syntax errors');
  });

  it('takes bounded time on large garbage', () => {
    const garbage = Array.from({ length: 60_000 }, (_, i) => ['(', 'x', '+', ')', '{', 'let', '=', '}', '\n', '[', 'é'][(i * 7919) % 11]).join(' ');
    const start = performance.now();
    frontEnd(`attention a { ${garbage}`);
    expect(performance.now() - start).toBeLessThan(5000);
  });
});
