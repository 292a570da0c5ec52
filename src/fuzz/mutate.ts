// Mutations of existing spec text for front-end fuzzing: token-level edits
// (delete, duplicate, swap, insert a random token), byte-level damage, huge
// literals, unusual Unicode, and the pathological shapes (deep nesting, files
// at and past the size limit) that blow stacks or go quadratic when a
// front end is careless.
import { makeRng, type Rng } from './rng.ts';

/** A rough tokenization that keeps every character: words, numbers, operators, spaces. */
export function roughTokens(text: string): string[] {
  return text.match(/\s+|[A-Za-z_][A-Za-z0-9_]*|[0-9.]+(?:e[-+]?[0-9]+)?|&&|\|\||[<>=!]=|\/\/[^\n]*|./gsu) ?? [];
}

const INSERTS = [
  '(', ')', '{', '}', '[', ']', ',', ':', '=', '==', '<', '&&', '||', '!', '-', '+', '*', '/', '%',
  'if', 'then', 'else', 'let', 'param', 'input', 'mask', 'score', 'scale', 'attention', 'true', '1e308',
  '\n', '/*', '*/', '//', '"', "'", '\\', 'i32', 'f32', 'kv_len', 'clamp(', 'q_idx', '1.', '.5', '0x10',
];

/** Code points that stress lexers and span arithmetic (astral chars are 2 UTF-16 units). */
const UNICODE = [
  '\u00e9', '\u0301', '\u200b', '\u200d', '\u202e', '\ufeff', '\u2028', '\u2029', '\u00a0', '\u3000',
  '\u{1F600}', '\u{1D400}', '\ud800', '\udfff', '\u0000', '\u0085', 'Ω', 'ſ', 'K', 'ﬁ', 'İ', '\u{10FFFF}',
];

const HUGE = [
  '1' + '0'.repeat(400), '9'.repeat(40), '1e99999', '1e-99999', '0.' + '0'.repeat(500) + '1',
  '2147483648', '2147483647', '4294967296', '1' + '0'.repeat(5000) + '.0', '1.7976931348623157e308', '5e-324',
];

export type MutationKind = 'delete' | 'duplicate' | 'swap' | 'insert' | 'bytes' | 'huge' | 'unicode' | 'splice';

export function mutate(text: string, seed: number, corpus: readonly string[]): { text: string; kinds: MutationKind[] } {
  const r = makeRng(seed);
  let toks = roughTokens(text);
  const kinds: MutationKind[] = [];
  const edits = r.int(1, 6);
  for (let e = 0; e < edits; e++) {
    const kind = r.pick<MutationKind>(['delete', 'delete', 'duplicate', 'swap', 'insert', 'insert', 'bytes', 'huge', 'unicode', 'splice']);
    kinds.push(kind);
    toks = apply(kind, toks, r, corpus);
  }
  return { text: toks.join(''), kinds };
}

function apply(kind: MutationKind, toks: string[], r: Rng, corpus: readonly string[]): string[] {
  const at = () => r.int(0, Math.max(0, toks.length - 1));
  const out = toks.slice();
  switch (kind) {
    case 'delete': out.splice(at(), r.int(1, 3)); break;
    case 'duplicate': { const i = at(); out.splice(i, 0, ...out.slice(i, i + r.int(1, 5))); break; }
    case 'swap': { const i = at(), j = at(); [out[i], out[j]] = [out[j], out[i]]; break; }
    case 'insert': out.splice(at(), 0, r.pick(INSERTS)); break;
    case 'bytes': {
      const bytes = Array.from({ length: r.int(1, 8) }, () => String.fromCharCode(r.int(0, 255)));
      out.splice(at(), r.int(0, 1), bytes.join(''));
      break;
    }
    case 'huge': {
      const nums = out.map((t, i) => (/^[0-9]/.test(t) ? i : -1)).filter((i) => i >= 0);
      out.splice(nums.length ? r.pick(nums) : at(), nums.length ? 1 : 0, r.pick(HUGE));
      break;
    }
    case 'unicode': {
      const i = at();
      const u = r.pick(UNICODE);
      out[i] = r.chance(0.5) ? (out[i] ?? '') + u : u;
      break;
    }
    case 'splice': {
      // A slice of another file, as if pasted in the wrong place.
      const other = roughTokens(r.pick(corpus));
      const a = r.int(0, other.length);
      out.splice(at(), 0, ...other.slice(a, a + r.int(1, 30)));
      break;
    }
  }
  return out;
}

/** The pathological inputs, each named; generated on demand (some are ~1 MB). */
export function pathological(): { name: string; make: () => string }[] {
  const wrap = (body: string) => `attention deep {\n  score = ${body}\n}\n`;
  const n = 10_000;
  return [
    { name: 'parens x10000', make: () => wrap('('.repeat(n) + 'score' + ')'.repeat(n)) },
    { name: 'unclosed parens x10000', make: () => wrap('('.repeat(n) + 'score') },
    { name: 'unary minus x10000', make: () => wrap('-'.repeat(n) + 'score') },
    { name: 'not x10000', make: () => `attention d {\n  mask ${'!'.repeat(n)}causal\n}\n` },
    { name: 'nested if x10000', make: () => wrap('if causal then '.repeat(n) + 'score' + ' else 0.0'.repeat(n)) },
    { name: 'nested calls x10000', make: () => wrap('exp('.repeat(n) + 'score' + ')'.repeat(n)) },
    { name: 'index chain x10000', make: () => `attention d {\n  input t: i32[kv_len]\n  mask ${'t['.repeat(n)}0${']'.repeat(n)} == 0\n}\n` },
    { name: 'braces x10000', make: () => `attention d ${'{'.repeat(n)}${'}'.repeat(n)}` },
    { name: 'plus chain x100000', make: () => wrap(Array(100_000).fill('score').join(' + ')) },
    { name: 'lets 1 MB - 1', make: () => fill(1024 * 1024 - 1) },
    { name: 'lets 1 MB + 1', make: () => fill(1024 * 1024 + 1) },
    { name: 'one 1 MB identifier', make: () => wrap('a'.repeat(1024 * 1024 - 40)) },
    { name: 'one 1 MB number', make: () => wrap('1'.repeat(1024 * 1024 - 40)) },
    { name: 'one 1 MB comment', make: () => `// ${'x'.repeat(1024 * 1024 - 10)}\n` },
    { name: 'unterminated block comment 1 MB', make: () => `/* ${'x'.repeat(1024 * 1024 - 10)}` },
    { name: '100000 blocks', make: () => 'attention a {}\n'.repeat(70_000) },
    { name: '1 MB of newlines', make: () => '\n'.repeat(1024 * 1024 - 1) },
    { name: '1 MB of astral chars', make: () => '\u{1F600}'.repeat(262_143) },
    { name: '1 MB of random bytes', make: () => { const r = makeRng(7); return Array.from({ length: 1 << 19 }, () => String.fromCharCode(r.int(0, 255))).join(''); } },
    { name: 'lone surrogates', make: () => `attention \ud800 {\n score = score\udfff\n}\n` },
    { name: 'empty', make: () => '' },
  ];
}

/** A valid-looking file of `let`s padded to exactly `bytes` bytes. */
function fill(bytes: number): string {
  const head = 'attention big {\n';
  const tail = '  score = score\n}\n';
  const lines: string[] = [];
  let size = head.length + tail.length;
  for (let i = 0; size < bytes - 40; i++) {
    const line = `  let v${i} = q_idx + ${i % 97}\n`;
    lines.push(line);
    size += line.length;
  }
  const pad = bytes - size;
  return head + lines.join('') + (pad > 3 ? `//${'x'.repeat(pad - 3)}\n` : ' '.repeat(Math.max(0, pad))) + tail;
}
