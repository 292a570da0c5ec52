// The generated WGSL itself: golden files (one per example, f32, D = 64, fixed
// limits; rewrite with UPDATE_GOLDEN=1 and review the diff), Dawn's shader
// compiler on every example x dtype x head dim, and user names never
// reaching the code raw.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeGpu } from '../../src/runtime/webgpu-node.ts';
import { compileWgsl, compileWgslBackward, GOLDEN_LIMITS, loadExample, loadSpecText } from './wgsl-harness.ts';
import { expectGolden } from '../golden-file.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const GOLDEN = join(import.meta.dirname, '../golden/wgsl');
const GOLDEN_BWD = join(import.meta.dirname, '../golden/wgsl-bwd');
const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.attn')).sort();

describe('WGSL golden files (f32, D = 64, lavapipe limits)', () => {
  for (const file of files) {
    it(file, () => {
      const ex = loadExample(join(EXAMPLES, file));
      const source = compileWgsl(ex, 'f32', 64, GOLDEN_LIMITS).source;
      const path = join(GOLDEN, file.replace(/\.attn$/, '.wgsl'));
      expectGolden(path, source);
    });
  }
});

describe('WGSL backward golden files (f32, D = 64, lavapipe limits)', () => {
  for (const file of files) {
    it(file, () => {
      const source = compileWgslBackward(loadExample(join(EXAMPLES, file)), 'f32', 64, GOLDEN_LIMITS).source;
      expectGolden(join(GOLDEN_BWD, file.replace(/\.attn$/, '.wgsl')), source);
    });
  }
});

let device: GPUDevice | null = null;
try {
  const adapter = await nodeGpu().requestAdapter();
  device = adapter ? await adapter.requestDevice() : null;
} catch {
  device = null;
}
if (!device) console.warn('tests/diff/wgsl-shaders.test.ts: Dawn compilation tests skipped: no WebGPU adapter');
const gpu = device ? describe : describe.skip;

async function compileErrors(code: string): Promise<string[]> {
  device!.pushErrorScope('validation');
  const module = device!.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const scoped = await device!.popErrorScope();
  const errors = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
  return scoped ? [...errors, scoped.message] : errors;
}

gpu('every generated shader passes Dawn', () => {
  for (const file of files) {
    it(file, async () => {
      const ex = loadExample(join(EXAMPLES, file));
      for (const dtype of ['f32', 'f16'] as const) {
        for (const D of [32, 64, 96, 128]) {
          const { source } = compileWgsl(ex, dtype, D, GOLDEN_LIMITS);
          expect(await compileErrors(source), `${file} ${dtype} D=${D}`).toEqual([]);
          const backward = compileWgslBackward(ex, dtype, D, GOLDEN_LIMITS).source;
          expect(await compileErrors(backward), `${file} backward ${dtype} D=${D}`).toEqual([]);
        }
      }
    });
  }
});

describe('user names are mangled', () => {
  // WGSL keywords and reserved words, and a name WGSL reserves by its `__` prefix.
  const text = [
    'attention names {',
    '  param var = 2.0',
    '  param loop: i32 = 3',
    '  param array = 0.5',
    '  param __x = 0.25',
    '  input struct: f32[heads]',
    '  score = score * var + array * struct[head] - loop * __x',
    '  mask kv_idx <= q_idx',
    '}',
  ].join('\n');
  it('keywords and reserved names compile', async () => {
    const ex = loadSpecText('names.attn', text);
    const { source } = compileWgsl(ex, 'f32', 64, GOLDEN_LIMITS);
    expect(source).toMatch(/u\.p_var\b/);
    expect(source).toMatch(/u\.px_5f5f78\b/);
    // Comments may quote the user's names; the code never does.
    expect(source.replace(/\/\/.*$/gm, '')).not.toMatch(/\b(__x|struct_|loop)\b/);
    if (device) expect(await compileErrors(source)).toEqual([]);
  });
});
