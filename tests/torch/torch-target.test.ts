// The torch target (src/compiler/render/torch.ts): one Python module per spec, dtype and head dim that runs the
// CUDA kernel from PyTorch.
// - Always (python3): every example's module is valid Python and carries exactly the CUDA sources renderCuda makes
//   for sm_90a and sm_80; a golden module for the paper's kernel (its sources, goldens of their own, elided).
// - Where the Python (ATTNC_PYTHON, else python3) has torch: bad calls get one clear error each, before any GPU work.
// - Where it also finds NVRTC (the nvidia-* wheels, the loader path, $CUDA_HOME): the module's own NVRTC binding
//   builds cubins for sm_90a and sm_89, then finds them in its disk cache. No GPU needed.
// - Where torch has a CUDA device: every example, bf16 and f16, D 64 and 128, ragged, GQA and decode shapes, through the
//   torch backend (src/runtime/torch-module-backend.ts: the module called from PyTorch in a Python worker), against
//   the float64 reference (src/runtime/reference.ts) within the dtype's tolerance.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { frontEnd, lowerAndAnalyze } from '../../src/compiler/compile.ts';
import { renderCuda } from '../../src/compiler/render/cuda.ts';
import { renderTorch, torchModuleName } from '../../src/compiler/render/torch.ts';
import type { StorageDType } from '../../src/compiler/manifest.ts';
import type { CudaBackwardTuning } from '../../src/compiler/render/cuda-bwd-tuning.ts';
import { expectGolden } from '../golden-file.ts';
import { EXAMPLES_DIR, formatResult, loadExamples, runCase } from '../cuda/suite.ts';
import { genDiffSpec } from '../../src/fuzz/diff-gen.ts';
import { compileDiff } from '../../src/fuzz/diff-run.ts';

const PY = process.env.ATTNC_PYTHON ?? 'python3';
const py = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
  spawnSync(PY, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts, env: { ...process.env, ...opts.env } });
const probe = (code: string) => py(['-c', code]).status === 0;
const hasPython = probe('pass');
const hasTorch = hasPython && probe('import torch');
const hasCudaTorch = hasTorch && probe('import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)');
if (!hasPython) console.warn(`tests/torch/torch-target.test.ts: skipped: no ${PY}`);
else if (!hasTorch) console.warn(`tests/torch/torch-target.test.ts: calls skipped: ${PY} has no torch (ATTNC_PYTHON picks another Python)`);
else if (!hasCudaTorch) console.warn('tests/torch/torch-target.test.ts: GPU runs skipped: torch finds no CUDA device');

const work = mkdtempSync(join(tmpdir(), 'attnc-torch-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const specs = loadExamples();
const lowered = (name: string) => specs.find((s) => s.name === name)!.lowered;

/** Writes each module text to the work folder under its name, and expects Python to parse all of them. */
function expectPythonParses(modules: Array<[string, string]>): void {
  const files = modules.map(([name, text]) => {
    const path = join(work, `${name}.py`);
    writeFileSync(path, text);
    return path;
  });
  const r = py(['-c', 'import ast, sys\nfor p in sys.argv[1:]: ast.parse(open(p).read(), p)', ...files]);
  expect(r.status, r.stderr).toBe(0);
}

function writeModule(name: string, dtype: StorageDType, D: number, cudaBackward?: CudaBackwardTuning, as?: string): string {
  const path = join(work, `${as ?? torchModuleName(name, dtype, D)}.py`);
  writeFileSync(path, renderTorch(lowered(name), { dtype, headDim: D, hash: 'test', version: 'test', cudaBackward }));
  return path;
}

describe.skipIf(!hasPython)('torch target: every example', () => {
  it('valid Python with both archs\' CUDA sources verbatim, for bf16 D=64, f16 D=128 and f32 D=64', () => {
    const modules: Array<[string, string]> = [];
    for (const s of specs) for (const [dtype, D] of [['bf16', 64], ['f16', 128], ['f32', 64]] as const) {
      const text = renderTorch(s.lowered, { dtype, headDim: D, hash: 'test', version: 'test' });
      for (const arch of ['sm_90a', 'sm_80'] as const) {
        const { source } = renderCuda(s.lowered, { dtype, headDim: D, hash: 'test', version: 'test', arch });
        expect(text.includes(`'source': r'''${source}'''`), `${s.name} ${dtype} D${D}: the ${arch} source`).toBe(true);
      }
      modules.push([torchModuleName(s.name, dtype, D), text]);
    }
    expectPythonParses(modules);
  }, 120_000);

  it('each launch\'s argument list matches its kernel\'s C signature (pointer, int or float, in order), every example and arch', () => {
    // The module marshals tensors and tables as 64-bit pointers, sizes and i32 params as int32, f32 params as float:
    // the kernel's extern "C" signature must take exactly that, or a launch would read garbage.
    const cType = (arg: string[]) => (arg[0] === 'tensor' || arg[0] === 'table' ? 'ptr' : arg[0] === 'size' || arg[2] === 'i32' ? 'int' : 'float');
    for (const s of specs) for (const [dtype, D] of [['bf16', 64], ['f16', 128], ['f32', 64]] as const) {
      const text = renderTorch(s.lowered, { dtype, headDim: D, hash: 'test', version: 'test' });
      for (const arch of ['sm_90a', 'sm_80'] as const) {
        const entry = new RegExp(`"${arch}": \\{\\n\\s+'kernel': "\\w*",\\n\\s+'launches': (\\[.*\\]),\\n\\s+'args': (\\[.*\\]),\\n\\s+'source': r'''([\\s\\S]*?)'''`).exec(text);
        expect(entry, `${s.name} ${dtype} D${D} ${arch}`).not.toBeNull();
        const launches = JSON.parse(entry![1].replace(/None/g, 'null').replace(/True/g, 'true').replace(/False/g, 'false')) as Array<{ entry: string }>;
        const args = JSON.parse(entry![2]) as string[][];
        for (const l of launches) {
          const sig = new RegExp(`extern "C" __global__ void __launch_bounds__\\([^)]*\\) ${l.entry}\\(([^)]*)\\)`).exec(entry![3]);
          expect(sig, `${s.name} ${arch}: ${l.entry}`).not.toBeNull();
          const params = sig![1].split(',').map((p) => (p.includes('*') ? 'ptr' : /\bint\b/.test(p) ? 'int' : /\bfloat\b/.test(p) ? 'float' : `? ${p.trim()}`));
          expect(params, `${s.name} ${dtype} D${D} ${arch} ${l.entry}`).toEqual(args.map(cType));
        }
      }
    }
  });

  it('golden scale_invariant_bf16_d128.py (the CUDA sources elided: tests/golden/cuda has them)', () => {
    const text = renderTorch(lowered('scale_invariant'), { dtype: 'bf16', headDim: 128, hash: 'golden', version: 'golden' });
    expectGolden('tests/golden/torch/scale_invariant_bf16_d128.py', text.replace(/'source': r'''[\s\S]*?'''/g, "'source': r'''<CUDA source>'''"));
  });

  it('random specs of the differential generator (200 seeds): modules that Python parses, with every param and table', () => {
    const modules: Array<[string, string]> = [];
    for (let seed = 1; seed <= 200; seed++) {
      const c = compileDiff(genDiffSpec(seed));
      const text = renderTorch(c.lowered, { dtype: seed % 2 ? 'bf16' : 'f16', headDim: 64, hash: `s${seed}`, version: 'test' });
      for (const p of c.spec.params) expect(text, `seed ${seed}`).toContain(`${JSON.stringify(p.name)}: (${JSON.stringify(p.type)}`);
      for (const t of c.spec.tables) expect(text, `seed ${seed}`).toContain(`${JSON.stringify(t.name)}: (`);
      modules.push([`gen${seed}`, text]);
    }
    expectPythonParses(modules);
  }, 120_000);

  it('names reach the module only as string literals', () => {
    const fe = frontEnd('evil.attn', 'attention evil {\n  param lambda = 2.0\n  input None: f32[heads]\n  score = score * lambda + None[head]\n}\n');
    if (!fe.ok) throw new Error('spec does not compile');
    const text = renderTorch(lowerAndAnalyze(fe.block), { dtype: 'bf16', headDim: 64, hash: 'x', version: 'x' });
    expect(text).toMatch(/^PARAMS = \{"lambda": \("f32", 2\.0\)\}$/m);
    expect(text).toMatch(/^INPUTS = \{"None": \("f32", "heads", "Hq"\)\}$/m);
    const r = spawnSync(PY, ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: text, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});

/** Runs Python code in the work folder (the modules import by name) and returns its stdout lines. */
function runPython(code: string, env: NodeJS.ProcessEnv = {}): string[] {
  const r = py(['-c', code], { cwd: work, env });
  if (r.status !== 0) throw new Error(`python failed:\n${r.stderr}`);
  return r.stdout.trim().split('\n');
}

describe.skipIf(!hasTorch)('torch target: bad calls, on any machine with torch', () => {
  it('each gets one clear error, before any GPU work', () => {
    writeModule('scale_invariant', 'bf16', 128);
    writeModule('alibi', 'f16', 64);
    writeModule('document', 'bf16', 64);
    writeModule('sliding_window', 'bf16', 64);
    const lines = runPython(`
import torch
import scale_invariant_bf16_d128 as m, alibi_f16_d64 as a, document_bf16_d64 as d, sliding_window_bf16_d64 as w
def err(f):
    try:
        f()
        return 'no error'
    except Exception as e:
        return f'{type(e).__name__}: {e}'
q = torch.randn(1, 4, 100, 128, dtype=torch.bfloat16); k = torch.randn(1, 2, 100, 128, dtype=torch.bfloat16)
print(err(lambda: m.attention(q, k, k)))
print(err(lambda: m.attention(q.float(), k, k)))
print(err(lambda: m.attention(q[..., :64], k, k)))
print(err(lambda: m.attention(q[0], k, k)))
print(err(lambda: m.attention(q, torch.randn(1, 3, 100, 128, dtype=torch.bfloat16), torch.randn(1, 3, 100, 128, dtype=torch.bfloat16))))
print(err(lambda: m.attention(q, k, k[:, :, :50])))
print(err(lambda: m.attention(q, k, k, params={'tua': 1.0})))
print(err(lambda: m.attention(q, k, k, params={'tau': 'x'})))
print(err(lambda: m.attention('q', k, k)))
qh = torch.randn(2, 8, 50, 64, dtype=torch.float16); kh = torch.randn(2, 4, 70, 64, dtype=torch.float16)
print(err(lambda: a.attention(qh, kh, kh)))
print(err(lambda: a.attention(qh, kh, kh, tables={'slopes': torch.ones(7)})))
print(err(lambda: a.attention(qh, kh, kh, tables={'slopes': torch.ones(8), 'extra': torch.ones(8)})))
qd = torch.randn(1, 2, 30, 64, dtype=torch.bfloat16)
print(err(lambda: d.attention(qd, qd, qd, tables={'doc': torch.zeros(30)})))
print(err(lambda: a.attention(qh, kh, kh, tables={'slopes': torch.ones(8)})))
qw = torch.randn(1, 2, 10, 64, dtype=torch.bfloat16)
print(err(lambda: w.attention(qw, qw, qw, params={'window': 3.5})))
print(err(lambda: w.attention(qw, qw, qw, params={'window': 2 ** 40})))
print(err(lambda: w.attention(qw, qw, qw, params={'window': True})))
print(err(lambda: w.attention(qw, qw, qw, params={'window': torch.tensor(7)})))
print(err(lambda: w.prepare('cpu')))
`);
    expect(lines).toEqual([
      'ValueError: scale_invariant: q, k and v must be on one CUDA device; got cpu, cpu, cpu',
      "TypeError: scale_invariant: this module's kernel takes torch.bfloat16; q is torch.float32 (compile the spec again with --dtype for another)",
      "ValueError: scale_invariant: this module's kernel has head_dim 128; q has 64 (compile again with --head-dim)",
      'ValueError: scale_invariant: q must be 4-D ([B, H, N, 128]), got shape (4, 100, 128)',
      'ValueError: scale_invariant: the query heads (4) must be a multiple of the key/value heads (3)',
      'ValueError: scale_invariant: k and v must both be [B, Hkv, Nk, D] with the B of q; got q (1, 4, 100, 128), k (1, 2, 100, 128), v (1, 2, 50, 128)',
      "ValueError: scale_invariant: unknown params ['tua']; the spec has ['tau']",
      'TypeError: scale_invariant: param tau must be a number, got str',
      'TypeError: scale_invariant: q must be a torch.Tensor, got str',
      'ValueError: alibi: table slopes (f32[heads]) was not given',
      'ValueError: alibi: table slopes is f32[heads], so it needs 8 values (Hq); got shape (7,)',
      "ValueError: alibi: unknown tables ['extra']; the spec has ['slopes']",
      'TypeError: document: table doc is i32; got a torch.float32 tensor',
      'ValueError: alibi: q, k and v must be on one CUDA device; got cpu, cpu, cpu',
      'ValueError: sliding_window: param window is i32, got 3.5',
      'ValueError: sliding_window: param window is i32, got 1099511627776',
      'TypeError: sliding_window: param window must be a number, got bool',
      // a 0-dim tensor is a number: the call gets as far as the device check
      'ValueError: sliding_window: q, k and v must be on one CUDA device; got cpu, cpu, cpu',
      'ValueError: sliding_window: prepare() takes a CUDA device, got cpu',
    ]);
  }, 120_000);
});

describe.skipIf(!hasTorch)('torch target: one custom operator under tracing, on any machine with torch', () => {
  it('make_fx over fake CUDA tensors records the kernel as one op with the output shapes', () => {
    writeModule('alibi', 'bf16', 64);
    const lines = runPython(`
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
import alibi_bf16_d64 as a
with FakeTensorMode():
    q = torch.empty(2, 8, 100, 64, dtype=torch.bfloat16, device='cuda')
    k = torch.empty(2, 4, 120, 64, dtype=torch.bfloat16, device='cuda')
    s = torch.empty(8, dtype=torch.float32, device='cuda')
g = make_fx(lambda q, k, v, s: a.attention(q, k, v, tables={'slopes': s}), tracing_mode='fake')(q, k, k.clone(), s)
ops = [n for n in g.graph.nodes if n.op == 'call_function' and 'attnc' in str(n.target)]
print(len(ops), str(ops[0].target))
outputs = list(g.graph.nodes)[-1].args[0]
print([tuple(x.meta['val'].shape) for x in outputs])
print([x.meta['val'].dtype for x in outputs])
`);
    expect(lines[0]).toMatch(/^1 attnc\.alibi_bf16_d64_test\.default$/);
    expect(lines[1]).toBe('[(2, 8, 100, 64), (2, 8, 100)]');
    expect(lines[2]).toBe('[torch.bfloat16, torch.float32]');
  }, 120_000);
});

const hasNvrtc = hasTorch && (() => {
  writeModule('causal', 'bf16', 64);
  return py(['-c', 'import causal_bf16_d64 as m; m._nvrtc()'], { cwd: work }).status === 0;
})();
if (hasTorch && !hasNvrtc) console.warn('tests/torch/torch-target.test.ts: NVRTC build skipped: the module finds no libnvrtc');

describe.skipIf(!hasNvrtc)('torch target: the module\'s own NVRTC binding (no GPU needed)', () => {
  it('builds cubins for sm_90a and sm_89, then reads them from its disk cache', () => {
    writeModule('scale_invariant', 'bf16', 128);
    const cache = join(work, 'cache');
    // The third call must come from the cache: NVRTC is swapped for one that fails if asked to compile.
    const lines = runPython(`
import os, scale_invariant_bf16_d128 as m
built = {arch: m.compile_cubin(arch) for arch in ('sm_90a', 'sm_89')}
for arch, c in built.items():
    print(arch, c[:4] == b'\\x7fELF', len(c) > 10000)
print('cached files', len(os.listdir(os.path.join(os.environ['ATTNC_CACHE_DIR'], 'cuda'))))
class NoCompile:
    version = m._nvrtc().version
    def compile(self, source, arch):
        raise RuntimeError('NVRTC asked to compile ' + arch)
m._STATE['nvrtc'] = NoCompile()
print('sm_90a again', m.compile_cubin('sm_90a') == built['sm_90a'])
`, { ATTNC_CACHE_DIR: cache });
    expect(lines).toEqual(['sm_90a True True', 'sm_89 True True', 'cached files 2', 'sm_90a again True']);
  }, 120_000);

  it('builds the backward cubins of the variants under evaluation for sm_90a (--cuda-bwd; wgmma and the single pass among them)', () => {
    const sets: Array<[string, CudaBackwardTuning]> = [['mma', { tables: true, asyncStats: true, scanWindow: true }], ['wgmma', { tables: true, asyncStats: true, scanWindow: true, wgmma: true }], ['fused', { tables: true, asyncStats: true, scanWindow: true, wgmma: true, fusedDq: true }]];
    for (const [label, tuning] of sets) for (const name of ['scale_invariant', 'document']) writeModule(name, 'bf16', 128, tuning, `${name}_${label}`);
    const lines = runPython(`
import importlib
for label in ('mma', 'wgmma', 'fused'):
    for name in ('scale_invariant', 'document'):
        m = importlib.import_module(f'{name}_{label}')
        c = m.compile_cubin('sm_90a', backward=True)
        b = m.BACKWARD['sm_90a']
        print(name, label, c[:4] == b'\\x7fELF', 'wgmma.mma_async' in b['source'], [x[0] for x in b['scratch']], 'wgmma.mma_async' in m.BACKWARD['sm_80']['source'])
`, { ATTNC_CACHE_DIR: join(work, 'cache-variants') });
    expect(lines).toEqual([
      "scale_invariant mma True False ['Delta'] False", "document mma True False ['Delta'] False", "scale_invariant wgmma True True ['Delta'] False", "document wgmma True True ['Delta'] False",
      "scale_invariant fused True True ['Delta', 'dQacc'] False", "document fused True True ['Delta', 'dQacc'] False",
    ]);
  }, 240_000);
});

describe.skipIf(!hasCudaTorch)('torch target on the GPU: every example against the float64 reference', () => {
  it('bf16 and f16, D 64 and 128, ragged, GQA and decode shapes, through the torch backend (the module from PyTorch)', async () => {
    const { openTorchModuleBackend } = await import('../../src/runtime/torch-module-backend.ts');
    const backend = await openTorchModuleBackend();
    const shapes = [
      { B: 1, Hq: 2, Hkv: 2, Nq: 17, Nk: 17 },
      { B: 2, Hq: 4, Hkv: 2, Nq: 300, Nk: 300 },
      { B: 1, Hq: 4, Hkv: 1, Nq: 1, Nk: 1000 },
      { B: 1, Hq: 2, Hkv: 2, Nq: 17, Nk: 300 },
    ];
    const failures: string[] = [];
    let cases = 0;
    try {
      // the CUDA suite's own case (tests/cuda/suite.ts runCase): the kernel the backend's GPU runs, against float64
      for (const s of specs) for (const dtype of ['bf16', 'f16'] as const) for (const D of [64, 128]) {
        for (const [i, sh] of shapes.entries()) {
          const r = await runCase(backend, s, dtype, { ...sh, D }, 7 + i);
          cases++;
          if (!r.pass) failures.push(formatResult(r));
        }
      }
    } finally {
      backend.dispose();
    }
    expect(failures).toEqual([]);
    expect(cases).toBe(specs.length * 2 * 2 * shapes.length);
  }, 600_000);
});

describe.skipIf(!hasCudaTorch)('torch target on the GPU: gradients through the module\'s autograd against the float64 backward reference', () => {
  it('every example, bf16 and f16, D 64 and 128: o.backward(dO) gives dQ, dK, dV within tolerance', async () => {
    const { openTorchModuleBackend } = await import('../../src/runtime/torch-module-backend.ts');
    const { checkBackwardCases } = await import('../../src/runtime/check.ts');
    const backend = await openTorchModuleBackend();
    const shapes = [{ B: 1, Hq: 4, Hkv: 2, Nq: 130, Nk: 130 }, { B: 1, Hq: 2, Hkv: 1, Nq: 17, Nk: 200 }];
    const failures: string[] = [];
    let compared = 0;
    try {
      for (const s of specs) for (const D of [64, 128]) {
        const text = readFileSync(join(EXAMPLES_DIR, `${s.name}.attn`), 'utf8');
        for await (const r of checkBackwardCases(backend, text, s.block, s.lowered, shapes.map((x) => ({ ...x, D })), ['bf16', 'f16'], {}, 11)) {
          if (!r.pass) failures.push(`${s.name} ${r.dtype} D=${D} ${JSON.stringify(r.shape)}: dQ ${r.errDq} dK ${r.errDk} dV ${r.errDv}, ${r.nanCount} non-finite`);
          if (r.ambiguous === 0) compared++;
        }
      }
    } finally {
      backend.dispose();
    }
    expect(failures).toEqual([]);
    expect(compared).toBeGreaterThan(specs.length * 4);
  }, 600_000);
});
