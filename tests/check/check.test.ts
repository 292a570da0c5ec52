// The checker accepts every example and the DSL's own samples, and block
// selection behaves as --entry documents. Failing specs live in tests/errors/.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { parseSpec } from '../../src/compiler/syntax/parse.ts';
import { checkBlock, checkSpec, selectBlock } from '../../src/compiler/check/check.ts';
import { editDistance, suggest } from '../../src/compiler/check/suggest.ts';
import type { Expr } from '../../src/compiler/syntax/ast.ts';

/** The ten variants of DSL.md, written here so the test does not depend on examples/. */
const SAMPLES: Record<string, string> = {
  scale_invariant: `attention scale_invariant {
  param tau = 10.0
  let t = q_idx - kv_idx
  let l = log1p(t / tau)
  score = score * sqrt(2 * l + 1) - 2 * l
  mask causal
}`,
  causal: 'attention causal { mask causal }',
  alibi: `attention alibi {
  input slopes: f32[heads]
  score = score - slopes[head] * (q_idx - kv_idx)
  mask causal
}`,
  softcap: `attention softcap {
  param cap = 50.0
  score = cap * tanh(score / cap)
  mask causal
}`,
  sliding_window: `attention sliding_window {
  param window: i32 = 1024
  mask causal && q_idx - kv_idx < window
}`,
  sinks_window: `attention sinks_window {
  param window: i32 = 1024; param sinks: i32 = 4
  mask causal && (q_idx - kv_idx < window || kv_idx < sinks)
}`,
  document: `attention document {
  input doc: i32[kv_len]
  mask causal && doc[q_idx] == doc[kv_idx]
}`,
  prefix_lm: `attention prefix_lm {
  param prefix: i32 = 256
  mask causal || kv_idx < prefix
}`,
  logn: `attention logn {
  param train_len = 4096.0
  score = score * max(1.0, log(q_idx + 1) / log(train_len))
  mask causal
}`,
  scale_invariant_window: `attention scale_invariant_window {
  param tau = 10.0
  param window: i32 = 4096
  let t = q_idx - kv_idx
  let l = log1p(t / tau)
  score = score * sqrt(2 * l + 1) - 2 * l
  mask causal && t < window
}`,
};

function diagnosticsOf(text: string) {
  const { file, diagnostics } = parseSpec('t.attn', text);
  return [...diagnostics, ...checkSpec(file)];
}

describe('checkSpec accepts', () => {
  for (const [name, text] of Object.entries(SAMPLES)) {
    it(`the DSL.md sample ${name}`, () => expect(diagnosticsOf(text)).toEqual([]));
  }

  const examples = existsSync('examples') ? readdirSync('examples').filter((f) => f.endsWith('.attn')) : [];
  for (const f of examples) {
    it(`examples/${f}`, () => expect(diagnosticsOf(readFileSync(`examples/${f}`, 'utf8'))).toEqual([]));
  }

  it('names that are keywords in WGSL, CUDA, C++ or Python', () => {
    const names = ['var', 'fn', 'float', 'int', 'lambda', 'def', 'struct', 'return', 'while', 'class', 'loop', 'None', 'i32', 'f32', 'heads'];
    const text = `attention a {\n${names.map((n, i) => `  let ${n} = ${i}.0`).join('\n')}\n  score = score + ${names.join(' + ')}\n}`;
    expect(diagnosticsOf(text)).toEqual([]);
  });

  it('several blocks, statements split over lines, comments and semicolons', () => {
    const text = `/* two variants */
attention a { mask causal }
attention b {
  let x = min(q_idx,
              kv_idx) // wrapped arguments
  score = if x > 3
    then score
    else score -
      1.0 ; mask causal
}`;
    expect(diagnosticsOf(text)).toEqual([]);
  });
});

describe('checkBlock', () => {
  it('types every expression by the rules of typing.ts', () => {
    const { file } = parseSpec('t', 'attention a { let x = 7 / 2\n let y = idiv(7, 2) % 3\n mask x < y || causal }');
    const { diagnostics, types } = checkBlock(file.blocks[0], file.text);
    expect(diagnostics).toEqual([]);
    const stmts = file.blocks[0].body;
    const typeOf = (i: number) => types.get((stmts[i] as { value?: Expr; cond?: Expr }).value ?? (stmts[i] as { cond: Expr }).cond);
    expect([typeOf(0), typeOf(1), typeOf(2)]).toEqual(['f32', 'i32', 'bool']);
  });

  it('follows score dependence through lets, and not through lets that do not read score', () => {
    expect(diagnosticsOf('attention a { let s = score\n let t = s * 2.0\n scale = t }').map((d) => d.code)).toEqual(['E024']);
    expect(diagnosticsOf('attention a { let t = head_dim * 2\n scale = 1.0 / sqrt(t)\n score = score * t }')).toEqual([]);
  });

  it('stays quiet about names whose definition had a syntax error', () => {
    expect(diagnosticsOf('attention a {\n let t = (q_idx +\n let u = t * 2\n score = score + u\n}').map((d) => d.code)).toEqual(['E001']);
  });
});

describe('selectBlock', () => {
  const file = parseSpec('t', 'attention causal { mask causal }\nattention full { }').file;

  it('takes the only block without --entry', () => {
    const only = parseSpec('t', 'attention only { }').file;
    expect(selectBlock(only)).toEqual({ block: only.blocks[0] });
  });

  it('takes the block named by --entry', () => {
    expect(selectBlock(file, 'full')).toEqual({ block: file.blocks[1] });
  });

  it('asks for --entry when there are several blocks', () => {
    const r = selectBlock(file);
    expect('diagnostic' in r && r.diagnostic.code).toBe('E032');
    expect('diagnostic' in r && r.diagnostic.message).toContain('causal, full');
  });

  it('suggests the closest block name for an unknown entry', () => {
    const r = selectBlock(file, 'casual');
    expect('diagnostic' in r && r.diagnostic.code).toBe('E033');
    expect('diagnostic' in r && r.diagnostic.notes).toContain("help: did you mean 'causal'?");
  });

  it('reports a file without blocks', () => {
    const r = selectBlock(parseSpec('t', '// nothing').file);
    expect('diagnostic' in r && r.diagnostic.code).toBe('E031');
  });
});

describe('suggest', () => {
  it('uses Damerau-Levenshtein distance', () => {
    expect(editDistance('tua', 'tau')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(suggest('tua', ['tau', 'q_idx'])).toBe('tau');
    expect(suggest('Tau', ['tua', 'tau'])).toBe('tau');
    expect(suggest('zzz', ['tau'])).toBeUndefined();
  });
});
