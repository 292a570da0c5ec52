// Generated-code safety: user names that are keywords or builtins in WGSL,
// CUDA/C++ and Python reach the output only mangled (p_NAME, t_NAME, or
// hex), every output compiles (Dawn, nvcc when present, Python's parser), and
// names built to inject code cannot get past the lexer.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontEnd, lowerAndAnalyze, renderKernel } from '../../src/compiler/compile.ts';
import { renderFlex } from '../../src/compiler/render/flex.ts';
import { renderTorch } from '../../src/compiler/render/torch.ts';
import { FUZZ_LIMITS } from '../../src/fuzz/front.ts';
import { findNvcc } from '../../src/cli/cubin.ts';
import { completeCall } from '../../src/runtime/execute.ts';
import { referenceAttention } from '../../src/runtime/reference.ts';
import { randomInputs } from '../../src/runtime/random.ts';

const nvcc = findNvcc();

const KEYWORDS = [
  'fn', 'var', 'const', 'array', 'f32', 'i32', 'u32', 'f16', 'vec4', 'loop', 'struct', 'override', 'workgroupBarrier', 'select', 'bitcast', 'ptr',
  'float', 'int', 'double', 'half', 'void', 'unsigned', 'char', '__global__', '__shared__', '__device__', 'threadIdx', 'blockIdx', 'asm', 'goto', 'template', 'namespace', 'main', 'printf',
  'lambda', 'def', 'class', 'return', 'None', 'True', 'False', 'import', 'torch', 'self', 'yield', 'pass', 'global', 'nonlocal', 'print',
  'p_tau', 't_doc', 'x__y', 'exp', 'q', 'o', 'lse', 'u', 'score_mod', 'mask_mod', 'b', 'h',
];

const INJECTIONS = ['a; } __global__ void x(', 'a)\nimport os', 'a/*', 'a`b', 'a"b', "a'b", 'a.b', 'a-b', '$a', 'a\u0000b', 'é', 'a\u202eb', 'a#b', 'a@b'];

/** Builds one spec that uses `name` as a param, as a table, and as a let. */
function specWith(names: string[]): string {
  const lines: string[] = [];
  names.forEach((n, i) => {
    if (i % 3 === 0) lines.push(`param ${n} = ${i + 1}.5`, `score = score + ${n} * 0.01`);
    else if (i % 3 === 1) lines.push(`input ${n}: f32[kv_len]`, `score = score + ${n}[kv_idx]`);
    else lines.push(`let ${n} = q_idx - kv_idx`, `mask ${n} >= 0`);
  });
  return `attention safety {\n${lines.map((l) => `  ${l}`).join('\n')}\n}\n`;
}

const accepted = KEYWORDS.filter((n) => frontEnd('k.attn', specWith([n])).ok);
const text = specWith(accepted);
const baseline = specWith(accepted.map((_, i) => `n${i}`));

function outputs(src: string) {
  const fe = frontEnd('s.attn', src);
  if (!fe.ok) throw new Error(fe.diagnostics.map((d) => d.message).join('; '));
  const lowered = lowerAndAnalyze(fe.block);
  return {
    wgsl: renderKernel(src, fe.block, lowered, { target: 'wgsl', dtype: 'f16', headDim: 64, limits: FUZZ_LIMITS }).source,
    cuda16: renderKernel(src, fe.block, lowered, { target: 'cuda', dtype: 'f16', headDim: 64 }).source,
    cuda32: renderKernel(src, fe.block, lowered, { target: 'cuda', dtype: 'f32', headDim: 64 }).source,
    flex: renderFlex(lowered, { hash: 'h', version: 'v' }),
    torch: renderTorch(lowered, { dtype: 'bf16', headDim: 64, hash: 'h', version: 'v' }),
  };
}

const words = (s: string) => new Set(s.replace(/"[^"\n]*"/g, '').replace(/\/\/[^\n]*|#[^\n]*/g, '').match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);

describe('generated-code safety', () => {
  const out = outputs(text);
  const base = outputs(baseline);

  it('most keyword-like names are legal DSL names', () => {
    // The DSL's own keywords are refused by the parser; everything else must be usable.
    expect(accepted.length).toBeGreaterThan(KEYWORDS.length - 6);
  });

  it('no user name appears raw in WGSL, CUDA, flex or torch code (outside comments and string keys)', () => {
    for (const [target, src] of Object.entries(out)) {
      const extra = [...words(src)].filter((w) => !words(base[target as keyof typeof base]).has(w));
      // New identifiers are mangled names or compiler temporaries, never a user's name.
      for (const w of extra) if (!/^[pt]x?_/.test(w)) expect(accepted, `${target}: '${w}'`).not.toContain(w);
      for (const n of accepted) {
        if (words(base[target as keyof typeof base]).has(n)) continue; // a keyword of that language anyway
        expect(words(src).has(n), `${target}: raw '${n}'`).toBe(false);
      }
    }
  });

  it('injection attempts are stopped by the lexer with diagnostics inside the file', () => {
    for (const inj of INJECTIONS) {
      const src = `attention a {\n  param ${inj} = 1.0\n  score = score\n}\n`;
      const fe = frontEnd('inj.attn', src);
      expect(fe.ok, JSON.stringify(inj)).toBe(false);
      if (!fe.ok) for (const d of fe.diagnostics) expect(d.span.end).toBeLessThanOrEqual(src.length);
    }
  });

  it('the flex and torch modules parse as Python', () => {
    const py = spawnSync('python3', ['--version']);
    if (py.status !== 0) return console.warn('python3 absent: skipped');
    const dir = mkdtempSync(join(tmpdir(), 'attnc-safety-'));
    for (const m of ['flex', 'torch'] as const) {
      writeFileSync(join(dir, `${m}.py`), out[m]);
      execFileSync('python3', ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read())', join(dir, `${m}.py`)]);
    }
  });

  it('the WGSL compiles in Dawn', async () => {
    let device: GPUDevice;
    try {
      const { nodeGpu } = await import('../../src/runtime/webgpu-node.ts');
      const adapter = await nodeGpu().requestAdapter();
      if (!adapter) return console.warn('no WebGPU adapter: skipped');
      device = await adapter.requestDevice();
    } catch (e) { return console.warn(`no WebGPU: ${(e as Error).message}`); }
    for (const dtype of ['f32', 'f16'] as const) {
      const fe = frontEnd('s.attn', text);
      if (!fe.ok) throw new Error('spec');
      const src = renderKernel(text, fe.block, lowerAndAnalyze(fe.block), { target: 'wgsl', dtype, headDim: 64, limits: FUZZ_LIMITS }).source;
      const info = await device.createShaderModule({ code: src }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)).toEqual([]);
    }
    device.destroy();
  }, 60_000);

  it.skipIf(!nvcc)('the CUDA compiles with nvcc -cubin -arch=sm_80', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-safety-'));
    for (const [name, src] of [['f16', out.cuda16], ['f32', out.cuda32]] as const) {
      const file = join(dir, `k_${name}.cu`);
      writeFileSync(file, src);
      const r = spawnSync(nvcc!, ['-cubin', '-arch=sm_80', '-o', join(dir, `k_${name}.cubin`), file], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
  }, 120_000);
});

// Names JavaScript objects answer from Object.prototype (or cannot hold at all:
// `__proto__`), as params, tables and lets: the runtime's records and lookups
// treat them as ordinary names (src/runtime/own.ts).
describe('names of Object.prototype members', () => {
  const text = [
    'attention proto_names {',
    '  param constructor = 0.5',
    '  param __proto__: i32 = 3',
    '  input toString: f32[kv_len]',
    '  let valueOf = q_idx - kv_idx',
    '  score = score * constructor + toString[kv_idx]',
    '  mask valueOf >= 0 && valueOf < __proto__ * 5',
    '}',
  ].join('\n');
  const fe = frontEnd('proto.attn', text);
  if (!fe.ok) throw new Error(fe.diagnostics.map((d) => d.message).join('; '));
  const lowered = lowerAndAnalyze(fe.block);
  const shape = { B: 1, Hq: 1, Hkv: 1, Nq: 9, Nk: 12, D: 8 };
  const { q, k, v } = randomInputs(shape, 2);
  const tables = { ['toString']: Float32Array.from({ length: 12 }, (_, i) => i / 10) };

  it('take their defaults when not given, and given values when given', () => {
    const dflt = completeCall(lowered, { ...shape, q, k, v, params: {}, tables });
    expect([dflt.params['constructor'], dflt.params['__proto__']]).toEqual([0.5, 3]);
    const given = completeCall(lowered, { ...shape, q, k, v, params: { ['__proto__']: 1, ['constructor']: 2 }, tables });
    expect([given.params['constructor'], given.params['__proto__']]).toEqual([2, 1]);
  });

  it('run on the float64 reference, and the mask reads the given __proto__', () => {
    const call = completeCall(lowered, { ...shape, q, k, v, params: { ['__proto__']: 1 }, tables });
    const r = referenceAttention(fe.block, call);
    // With __proto__ = 1 a row keeps keys at distances 0..4 only: row 0 of 9 (q_idx 3) keeps kv 0..3.
    expect(r.lse.every((x) => Number.isFinite(x))).toBe(true);
    const wide = referenceAttention(fe.block, completeCall(lowered, { ...shape, q, k, v, params: {}, tables }));
    expect(Array.from(r.lse)).not.toEqual(Array.from(wide.lse));
  });
});
