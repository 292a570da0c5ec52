// The `ts` target: every example's module type-checks under `strict` against
// the WebGPU types alone, runs on the WebGPU adapter (lavapipe in CI) through
// its own exported class, and matches the float64 reference; golden files for
// two of them; its errors are the ones it documents.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Project, ts } from 'ts-morph';
import { afterAll, describe, expect, it } from 'vitest';
import { emitJavaScript, renderTsModule, pascalCase } from '../../src/compiler/render/ts-module.ts';
import { renderWgsl } from '../../src/compiler/render/wgsl.ts';
import { DEFAULT_WEBGPU_LIMITS } from '../../src/runtime/device.ts';
import { nodeGpu } from '../../src/runtime/webgpu-node.ts';
import { referenceAttention } from '../../src/runtime/reference.ts';
import { compareOutputs, TOLERANCE, withinTolerance } from '../../src/runtime/compare.ts';
import { defaultTables, randomInputs } from '../../src/runtime/random.ts';
import { roundThrough } from '../../src/runtime/half.ts';
import { loadExample, loadSpecText, TEST_PARAMS, type Example } from '../diff/wgsl-harness.ts';
import { expectGolden } from '../golden-file.ts';
import { STRICT_SETUPS, strictDiagnostics } from './strict.ts';
import { openTsModuleBackend } from '../../src/runtime/ts-module-backend.ts';
import { diffLoop } from '../../src/fuzz/diff-loop.ts';
import { genDiffSpec } from '../../src/fuzz/diff-gen.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const OUT = join(import.meta.dirname, 'generated');  // git-ignored
const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith('.attn')).sort().map((f) => loadExample(join(EXAMPLES, f)));

async function moduleFor(ex: Example, dtype: 'f32' | 'f16', D: number): Promise<string> {
  const kernel = renderWgsl(ex.lowered, { dtype, headDim: D, limits: DEFAULT_WEBGPU_LIMITS, hash: `test-${ex.name}`, version: 'test' });
  return renderTsModule(kernel, { command: `npx attnc compile ${ex.name}.attn --target ts --dtype ${dtype} --head-dim ${D}` });
}

// One f32 module per example at D = 32 (lavapipe compiles a kernel in seconds), f16 for two.
const F16 = new Set(['alibi', 'document']);
const modules = new Map<string, string>();
mkdirSync(OUT, { recursive: true });
for (const ex of examples) {
  for (const dtype of F16.has(ex.name) ? ['f32', 'f16'] as const : ['f32'] as const) {
    const path = join(OUT, `${ex.name}.${dtype}.ts`);
    const source = await moduleFor(ex, dtype, 32);
    writeFileSync(path, source);
    modules.set(`${ex.name}.${dtype}`, path);
  }
}

describe('ts target: the modules', () => {
  // Two set-ups users have: a browser project (TypeScript's DOM library, which declares WebGPU), and
  // a Node project with @webgpu/types and no DOM library (as this repository is).
  for (const [what, setup] of Object.entries(STRICT_SETUPS)) {
    it(`type-check under strict (${what})`, () => {
      expect(strictDiagnostics(setup, modules.values())).toEqual([]);
    });
  }

  it('of 40 random specs (the differential generator: all functions, params, tables, host-language names) type-check too', async () => {
    const project = new Project({
      compilerOptions: { strict: true, noEmit: true, noUnusedLocals: true, noUnusedParameters: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'], types: [] },
      useInMemoryFileSystem: true,
    });
    for (let i = 0; i < 40; i++) {
      const spec = genDiffSpec(1000 + i);
      const ex = loadSpecText(`r${i}.attn`, spec.text);
      project.createSourceFile(`/r${i}.ts`, await moduleFor(ex, i % 2 ? 'f16' : 'f32', 32));
    }
    const messages = project.getPreEmitDiagnostics().map((d) => `${d.getSourceFile()?.getBaseName()}:${d.getLineNumber()}: ${ts.flattenDiagnosticMessageText(d.getMessageText() as string | ts.DiagnosticMessageChain, ' ')}`);
    expect(messages).toEqual([]);
  }, 120_000);

  it('are golden for scale_invariant (params) and document (a table, f16)', async () => {
    const byName = new Map(examples.map((e) => [e.name, e]));
    expectGolden(join(import.meta.dirname, '../golden/ts/scale_invariant.f32.d64.ts'), await moduleFor(byName.get('scale_invariant')!, 'f32', 64));
    expectGolden(join(import.meta.dirname, '../golden/ts/document.f16.d64.ts'), await moduleFor(byName.get('document')!, 'f16', 64));
  });

  it('embed the WGSL source exactly, readable line for line', async () => {
    const ex = examples.find((e) => e.name === 'softcap')!;
    const kernel = renderWgsl(ex.lowered, { dtype: 'f32', headDim: 32, limits: DEFAULT_WEBGPU_LIMITS, hash: `test-${ex.name}`, version: 'test' });
    const mod = await import(modules.get('softcap.f32')!);
    expect(mod.WGSL).toBe(kernel.source);
    expect(mod.MANIFEST.spec).toBe('softcap');
    expect(readFileSync(modules.get('softcap.f32')!, 'utf8')).toContain('\nfn attend(');
  });

  it('name their classes after the spec', () => {
    expect(pascalCase('scale_invariant')).toBe('ScaleInvariant');
    expect(pascalCase('_x__y')).toBe('XY');
    expect(pascalCase('_9')).toBe('Spec9');
  });
});

const adapter = await nodeGpu().requestAdapter().catch(() => null);
const device = adapter ? await adapter.requestDevice() : null;
if (!device) console.warn('tests/ts-target/ts-module.test.ts: the GPU runs are skipped: no WebGPU adapter');
afterAll(() => device?.destroy());
const gpu = device ? describe : describe.skip;

// Names that mean something to JavaScript or to the module itself, as params (left at their
// defaults: a plain `params[name]` would read Object.prototype's `constructor`, `toString`...),
// tables and lets.
const JS_NAMES = ['function', 'new', 'this', 'typeof', 'await', 'async', 'interface', 'enum', 'delete', 'instanceof', 'export', 'default', 'switch',
  'constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'WGSL', 'MANIFEST', 'USAGE', 'checkShape', 'u32', 'bitsOf', 'Object', 'Math'];
function jsNamesSpec(): Example {
  const lines: string[] = [];
  JS_NAMES.forEach((n, i) => {
    if (i % 3 === 0) lines.push(`param ${n} = ${(i + 1) / 4}`, `score = score + ${n} * 0.1`);
    else if (i % 3 === 1) lines.push(`input ${n}: f32[kv_len]`, `score = score + ${n}[kv_idx]`);
    else lines.push(`let ${n} = q_idx - kv_idx`, `mask ${n} >= ${-i}`);
  });
  const text = `attention js_names {\n${lines.map((l) => `  ${l}`).join('\n')}\n}\n`;
  return loadSpecText('js_names.attn', text);
}

interface Shape { B: number; Hq: number; Hkv: number; Nq: number; Nk: number }
const SHAPES: Shape[] = [
  { B: 1, Hq: 2, Hkv: 1, Nq: 17, Nk: 300 },   // GQA, q_len < kv_len, not multiples of the tiles
  { B: 2, Hq: 2, Hkv: 2, Nq: 70, Nk: 70 },
];

gpu('ts target: the modules run on WebGPU and match the float64 reference', () => {
  for (const [id, path] of modules) {
    const [name, dtype] = id.split('.') as [string, 'f32' | 'f16'];
    const ex = examples.find((e) => e.name === name)!;
    it(`${id}`, async () => {
      const mod = await import(path);
      const Kernel = mod[`${pascalCase(name)}Attention`];
      const kernel = await Kernel.create(device!);
      for (const [i, s] of SHAPES.entries()) {
        const shape = { ...s, D: 32 };
        let { q, k, v } = randomInputs(shape, 7 + i);
        if (dtype === 'f16') [q, k, v] = [q, k, v].map((x) => roundThrough('f16', x));
        const tables = defaultTables(ex.lowered.program.inputs, shape, 7 + i);
        const params: Record<string, number> = {};
        for (const p of ex.lowered.program.params) params[p.name] = TEST_PARAMS[p.name] ?? p.default;
        const got = await (Object.keys(tables).length ? kernel.run({ q, k, v }, s, params, tables) : kernel.run({ q, k, v }, s, params));
        const want = referenceAttention(ex.block, { ...shape, q, k, v, params, tables });
        const c = compareOutputs(got, want, shape);
        expect(withinTolerance(c, TOLERANCE[dtype]), `${id} ${JSON.stringify(s)}: O err ${c.maxAbsErrO}, LSE err ${c.maxAbsErrLse}`).toBe(true);
      }
    });
  }

  it('a spec whose names are JavaScript keywords and built-ins: type-checks, and runs with its params at their defaults', async () => {
    const ex = jsNamesSpec();
    const path = join(OUT, 'js_names.f32.ts');
    writeFileSync(path, await moduleFor(ex, 'f32', 32));
    const project = new Project({ compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'], types: [] }, skipAddingFilesFromTsConfig: true });
    project.addSourceFileAtPath(path);
    expect(project.getPreEmitDiagnostics().map((d) => ts.flattenDiagnosticMessageText(d.getMessageText() as string | ts.DiagnosticMessageChain, ' '))).toEqual([]);
    const { JsNamesAttention } = await import(path);
    // 5 + 9 storage buffers: more than a default device allows, which create() says in one sentence.
    await expect(JsNamesAttention.create(device!)).rejects.toThrow(/binds 14 storage buffers \(Q, K, V, O, LSE and 9 tables\) and this device allows 8 per shader stage: request requiredLimits: \{ maxStorageBuffersPerShaderStage: 14 \}/);
    const big = await (await nodeGpu().requestAdapter())!.requestDevice({ requiredLimits: { maxStorageBuffersPerShaderStage: 14 } });
    const kernel = await JsNamesAttention.create(big);
    const s = { B: 1, Hq: 2, Hkv: 1, Nq: 20, Nk: 50 }, shape = { ...s, D: 32 };
    const { q, k, v } = randomInputs(shape, 11);
    const tables = defaultTables(ex.lowered.program.inputs, shape, 11);
    const defaults = Object.fromEntries(ex.lowered.program.params.map((p) => [p.name, p.default]));
    const got = await kernel.run({ q, k, v }, s, {}, tables);
    const c = compareOutputs(got, referenceAttention(ex.block, { ...shape, q, k, v, params: defaults, tables }), shape);
    expect(withinTolerance(c, TOLERANCE.f32), `O err ${c.maxAbsErrO} LSE err ${c.maxAbsErrLse}`).toBe(true);
    big.destroy();
  });

  it('refuses bad calls with the errors it documents', async () => {
    const mod = await import(modules.get('document.f32')!);
    const kernel = await mod.DocumentAttention.create(device!);
    const s = { B: 1, Hq: 2, Hkv: 1, Nq: 4, Nk: 4 };
    const x = new Float32Array(2 * 4 * 32), kv = new Float32Array(4 * 32);
    const doc = new Int32Array(4);
    await expect(kernel.run({ q: x, k: kv, v: kv }, { ...s, Hkv: 3 }, {}, { doc })).rejects.toThrow(/Hq \(2\) must be a multiple of Hkv \(3\)/);
    await expect(kernel.run({ q: x, k: kv, v: kv }, { ...s, Nq: 0 }, {}, { doc })).rejects.toThrow(/Nq must be a positive 32-bit integer/);
    await expect(kernel.run({ q: kv, k: kv, v: kv }, s, {}, { doc })).rejects.toThrow(/Q must hold B\*Hq\*Nq\*32 = 256 values, got 128/);
    await expect(kernel.run({ q: x, k: kv, v: kv }, s, {}, { doc: new Int32Array(3) })).rejects.toThrow(/table doc is i32\[kv_len\], so it needs 4 values, got 3/);
    await expect(kernel.run({ q: Array.from(x), k: kv, v: kv }, s, {}, { doc })).rejects.toThrow(/Q must be a Float32Array/);
    await expect(kernel.run({ q: x, k: kv, v: kv }, s, {}, { doc: [0, 0, 1, 1] })).rejects.toThrow(/table doc must be an Int32Array/);
    const sw = await (await import(modules.get('sliding_window.f32')!)).SlidingWindowAttention.create(device!);
    await expect(sw.run({ q: x, k: kv, v: kv }, s, { window: 2.5 })).rejects.toThrow(/param window is an integer, got 2.5/);
  });

  it('the emitted JavaScript runs as well (f16 document, as a plain ES module)', async () => {
    const ex = examples.find((e) => e.name === 'document')!;
    const { js } = await emitJavaScript(readFileSync(modules.get('document.f16')!, 'utf8'), 'document.f16');
    const path = join(OUT, 'document.f16.plain.js');
    writeFileSync(path, js);
    const mod = await import(path);
    const kernel = await mod.DocumentAttention.create(device!);
    const s = { B: 1, Hq: 2, Hkv: 1, Nq: 40, Nk: 90 }, shape = { ...s, D: 32 };
    const { q, k, v } = randomInputs(shape, 5);
    const [qh, kh, vh] = [q, k, v].map((x) => roundThrough('f16', x));
    const tables = defaultTables(ex.lowered.program.inputs, shape, 5);
    const got = await kernel.run({ q: qh, k: kh, v: vh }, s, {}, tables);
    const c = compareOutputs(got, referenceAttention(ex.block, { ...shape, q: qh, k: kh, v: vh, params: {}, tables }), shape);
    expect(withinTolerance(c, TOLERANCE.f16), `O err ${c.maxAbsErrO}`).toBe(true);
  });

  it('bind() + encode() with the caller\'s buffers give what run() gives', async () => {
    const mod = await import(modules.get('causal.f32')!);
    const kernel = await mod.CausalAttention.create(device!);
    const s = { B: 1, Hq: 2, Hkv: 2, Nq: 33, Nk: 33 };
    const { q, k, v } = randomInputs({ ...s, D: 32 }, 3);
    const viaRun = await kernel.run({ q, k, v }, s);
    const sizes = mod.CausalAttention.byteSizes(s);
    const d = device!;
    const make = (data: Float32Array | null, bytes: number, usage: number) => {
      const b = d.createBuffer({ size: bytes, usage });
      if (data) d.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
      return b;
    };
    const S = GPUBufferUsage.STORAGE, C = GPUBufferUsage.COPY_DST;
    const buffers = { q: make(q, sizes.q, S | C), k: make(k, sizes.k, S | C), v: make(v, sizes.v, S | C), o: make(null, sizes.o, S | GPUBufferUsage.COPY_SRC), lse: make(null, sizes.lse, S | GPUBufferUsage.COPY_SRC) };
    const read = make(null, sizes.o, GPUBufferUsage.MAP_READ | C);
    const call = kernel.bind(buffers, s);
    expect(call.workgroups).toEqual([Math.ceil(33 / mod.MANIFEST.tile.bm), 2, 1]);
    const enc = d.createCommandEncoder();
    call.encode(enc);
    enc.copyBufferToBuffer(buffers.o, 0, read, 0, sizes.o);
    d.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    expect(Array.from(new Float32Array(read.getMappedRange()))).toEqual(Array.from(viaRun.o));
    call.destroy();
    for (const b of [...Object.values(buffers), read]) b.destroy();
  });
});

// The differential fuzzer through the module itself (`--backend ts`): random specs, random names
// (host-language ones included), params and tables, at random shapes, against float64.
const tsBackend = device ? await openTsModuleBackend() : null;
afterAll(() => tsBackend?.dispose());
(tsBackend ? describe : describe.skip)('ts target: differential fuzzing through the module', () => {
  it('random specs match the float64 reference (fixed seed, 6 specs)', async () => {
    const s = await diffLoop(tsBackend!, { seed: 21, seconds: 600, maxSpecs: 6, maxLen: 150, maxWork: 40_000, dWeights: [1, 0, 0], shapesPerKernel: 3, saveDir: null });
    expect(s.failures.map((f) => f.spec)).toEqual([]);
    expect(s.specs).toBe(6);
    expect(s.cases).toBeGreaterThanOrEqual(6);
  }, 600_000);
});
