// Differential tests of the CUDA backend against the float64 reference,
// through openCuda(): every example, f32/f16/bf16, D 64, small shapes
// (ragged lengths, GQA, decode). Skipped, with the reason, when this machine
// has no CUDA driver/device/NVRTC. The long shapes run in scripts/test-gpu.sh.
import { afterAll, describe, expect, it } from 'vitest';
import type { CudaBackend } from '../../src/runtime/cuda.ts';
import { formatResult, loadExamples, runCase, shortShapes } from './suite.ts';

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
