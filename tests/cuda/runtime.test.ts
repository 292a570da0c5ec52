// Differential tests of the CUDA backend against the float64 reference,
// through openCuda(): every example, f32/f16/bf16, D 64, small shapes
// (ragged lengths, GQA, decode). Skipped, with the reason, when this machine
// has no CUDA driver/device/NVRTC. The long shapes run in scripts/test-gpu.sh.
import { afterAll, describe, expect, it } from 'vitest';
import type { CudaBackend } from '../../src/runtime/cuda.ts';
import { formatResult, loadExamples, runCase, shortShapes } from './suite.ts';
import { renderCuda } from '../../src/compiler/render/cuda.ts';
import { randomInputs } from '../../src/runtime/random.ts';

let backend: CudaBackend | null = null;
let reason = '';
try {
  const { openCuda } = await import('../../src/runtime/cuda.ts');
  backend = await openCuda();
} catch (e) {
  reason = `${(e as Error).name}: ${(e as Error).message}`;
  console.warn(`tests/cuda/runtime.test.ts: skipped: ${reason}`);
}
afterAll(() => backend?.dispose());

describe.skipIf(!backend)(`CUDA vs float64 reference${reason ? ` (skipped: ${reason})` : ''}`, () => {
  for (const spec of loadExamples()) {
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      it(`${spec.name} ${dtype}`, async () => {
        for (const shape of shortShapes(64).slice(0, 5)) {
          const r = await runCase(backend!, spec, dtype, shape);
          expect(r.pass, formatResult(r)).toBe(true);
        }
      }, 120_000);
    }
  }
});

describe.skipIf(!backend)('CUDA: 1 000 runs in one process', () => {
  it('leave device memory where it was (every buffer freed after each run)', async () => {
    const spec = loadExamples(['causal'])[0];
    const kernel = renderCuda(spec.lowered, { dtype: 'bf16', headDim: 64, hash: 'leak', version: 'leak', arch: backend!.codegen().arch });
    const shape = { B: 1, Hq: 2, Hkv: 1, Nq: 300, Nk: 300, D: 64 };
    const call = { ...shape, ...randomInputs(shape, 3), params: {}, tables: {} };
    for (let i = 0; i < 5; i++) await backend!.run(kernel, call);  // module loaded, allocator warm
    const before = backend!.memoryInfo().free;
    for (let i = 0; i < 1000; i++) await backend!.run(kernel, call);
    const after = backend!.memoryInfo().free;
    console.log(`CUDA leak test: free device memory ${before} -> ${after} bytes over 1000 runs`);
    // One run allocates about 0.3 MB (Q, K, V, O, LSE); a leak of even one buffer a run would show as >= 16 MB.
    expect(before - after).toBeLessThanOrEqual(2 * 1024 * 1024);
  }, 300_000);
});
