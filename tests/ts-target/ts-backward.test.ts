// The `ts` target of the backward kernels (`--target ts --backward`): every example's module type-checks under
// `strict` (TypeScript's DOM library, and @webgpu/types alone), one is golden, and on the WebGPU adapter the
// modules' own classes give dQ, dK, dV that match the float64 backward reference; bad calls get the errors the
// module documents.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pascalCase } from '../../src/compiler/render/ts-module.ts';
import { renderTsBackwardModule } from '../../src/compiler/render/ts-module-bwd.ts';
import { renderWgslBackward } from '../../src/compiler/render/wgsl-bwd.ts';
import { renderWgsl } from '../../src/compiler/render/wgsl.ts';
import { DEFAULT_WEBGPU_LIMITS } from '../../src/runtime/device.ts';
import { nodeGpu } from '../../src/runtime/webgpu-node.ts';
import { referenceBackward } from '../../src/runtime/reference-backward.ts';
import { gradientError, TOLERANCE } from '../../src/runtime/compare.ts';
import { defaultTables, mulberry32, normalSource, randomInputs } from '../../src/runtime/random.ts';
import { roundThrough } from '../../src/runtime/half.ts';
import { openWebGpu } from '../../src/runtime/webgpu.ts';
import { loadExample, TEST_PARAMS, type Example } from '../diff/wgsl-harness.ts';
import { expectGolden } from '../golden-file.ts';
import { STRICT_SETUPS, strictDiagnostics } from './strict.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const OUT = join(import.meta.dirname, 'generated');  // git-ignored
const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith('.attn')).sort().map((f) => loadExample(join(EXAMPLES, f)));

async function moduleFor(ex: Example, dtype: 'f32' | 'f16', D: number): Promise<string> {
  const kernel = renderWgslBackward(ex.lowered, { dtype, headDim: D, limits: DEFAULT_WEBGPU_LIMITS, hash: `test-bwd-${ex.name}`, version: 'test' });
  return renderTsBackwardModule(kernel, { command: `npx attnc compile ${ex.name}.attn --target ts --dtype ${dtype} --head-dim ${D} --backward` });
}

const F16 = new Set(['alibi', 'document']);
const modules = new Map<string, string>();
mkdirSync(OUT, { recursive: true });
for (const ex of examples) {
  for (const dtype of F16.has(ex.name) ? ['f32', 'f16'] as const : ['f32'] as const) {
    const path = join(OUT, `${ex.name}.${dtype}.bwd.ts`);
    writeFileSync(path, await moduleFor(ex, dtype, 32));
    modules.set(`${ex.name}.${dtype}`, path);
  }
}

describe('ts target, backward: the modules', () => {
  for (const [what, setup] of Object.entries(STRICT_SETUPS)) {
    it(`type-check under strict (${what})`, () => {
      expect(strictDiagnostics(setup, modules.values())).toEqual([]);
    }, 120_000);
  }

  it('is golden for document (a table, f16)', async () => {
    const ex = examples.find((e) => e.name === 'document')!;
    expectGolden(join(import.meta.dirname, '../golden/ts/document.f16.d64.bwd.ts'), await moduleFor(ex, 'f16', 64));
  });
});

const adapter = await nodeGpu().requestAdapter().catch(() => null);
const device = adapter ? await adapter.requestDevice() : null;
if (!device) console.warn('tests/ts-target/ts-backward.test.ts: the GPU runs are skipped: no WebGPU adapter');
afterAll(() => device?.destroy());
const gpu = device ? describe : describe.skip;
// The forward pass comes from the runtime (its O and LSE feed the module, as they would from the forward module).
const runtime = device ? await openWebGpu() : null;
afterAll(() => runtime?.dispose());

gpu('ts target, backward: the modules run on WebGPU and match the float64 backward reference', () => {
  for (const [id, path] of modules) {
    const [name, dtype] = id.split('.') as [string, 'f32' | 'f16'];
    if (!['causal', 'alibi', 'document', 'softcap'].includes(name)) continue; // lavapipe compiles each in seconds
    const ex = examples.find((e) => e.name === name)!;
    it(id, async () => {
      const mod = await import(path);
      const kernel = await mod[`${pascalCase(name)}AttentionBackward`].create(device!);
      const s = { B: 1, Hq: 4, Hkv: 2, Nq: 21, Nk: 45 }, shape = { ...s, D: 32 };
      const round = (x: Float32Array) => (dtype === 'f16' ? roundThrough('f16', x) : x);
      const { q, k, v } = randomInputs(shape, 9);
      const [rq, rk, rv] = [q, k, v].map(round);
      const dO = round(Float32Array.from({ length: 4 * 21 * 32 }, normalSource(mulberry32(3))));
      const tables = defaultTables(ex.lowered.program.inputs, shape, 9);
      const params: Record<string, number> = {};
      for (const p of ex.lowered.program.params) params[p.name] = TEST_PARAMS[p.name] ?? p.default;
      const call = { ...shape, q: rq, k: rk, v: rv, params, tables };
      const fwd = await runtime!.run(renderWgsl(ex.lowered, { dtype, headDim: 32, limits: runtime!.limits(), hash: `t-${id}`, version: 'test' }), call);
      const inputs = { q: rq, k: rk, v: rv, o: fwd.o, lse: fwd.lse, dO };
      const got = await (Object.keys(tables).length ? kernel.run(inputs, s, params, tables) : kernel.run(inputs, s, params));
      const want = referenceBackward(ex.block, call, dO);
      for (const g of ['dq', 'dk', 'dv'] as const) {
        const e = gradientError(got[g], want[g]);
        expect(e.nanCount).toBe(0);
        expect(e.err, `${id} ${g}`).toBeLessThanOrEqual(TOLERANCE[dtype]);
      }
    }, 120_000);
  }

  it('refuses bad calls with the errors it documents', async () => {
    const mod = await import(modules.get('document.f32')!);
    const kernel = await mod.DocumentAttentionBackward.create(device!);
    const s = { B: 1, Hq: 2, Hkv: 1, Nq: 4, Nk: 4 };
    const x = new Float32Array(2 * 4 * 32), kv = new Float32Array(4 * 32), lse = new Float32Array(8);
    const doc = new Int32Array(4);
    const ok = { q: x, k: kv, v: kv, o: x, lse, dO: x };
    await expect(kernel.run(ok, { ...s, Hkv: 3 }, {}, { doc })).rejects.toThrow(/Hq \(2\) must be a multiple of Hkv \(3\)/);
    await expect(kernel.run({ ...ok, dO: kv }, s, {}, { doc })).rejects.toThrow(/dO must hold B\*Hq\*Nq\*32 = 256 values, got 128/);
    await expect(kernel.run({ ...ok, lse: new Float32Array(3) }, s, {}, { doc })).rejects.toThrow(/LSE must hold B\*Hq\*Nq = 8 values, got 3/);
    await expect(kernel.run({ ...ok, o: Array.from(x) }, s, {}, { doc })).rejects.toThrow(/O must be a Float32Array/);
    await expect(kernel.run(ok, s, {}, { doc: new Int32Array(3) })).rejects.toThrow(/table doc is i32\[kv_len\], so it needs 4 values, got 3/);
  });
});
