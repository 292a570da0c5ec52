// Differential tests of the CUDA backend against the float64 reference,
// through openCuda(): every example, f32/f16/bf16, D 64, small shapes
// (ragged lengths, GQA, decode). Skipped, with the reason, when this machine
// has no CUDA driver/device/NVRTC. The long shapes run in scripts/test-gpu.sh.
import { afterAll, describe, expect, it } from 'vitest';
import { formatResult, loadExamples, openTestCuda, runCase, shortShapes } from './suite.ts';
import { renderCuda } from '../../src/compiler/render/cuda.ts';
import { randomInputs } from '../../src/runtime/random.ts';

const { backend, reason } = await openTestCuda('tests/cuda/runtime.test.ts');
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

describe.skipIf(!backend)('CUDA: timing', () => {
  // causal bf16 D=64 at B1 H4 N2048, as both tests time it
  const causalCall = () => {
    const spec = loadExamples(['causal'])[0];
    const kernel = renderCuda(spec.lowered, { dtype: 'bf16', headDim: 64, hash: 'time', version: 'time', arch: backend!.codegen().arch });
    const shape = { B: 1, Hq: 4, Hkv: 4, Nq: 2048, Nk: 2048, D: 64 };
    return { kernel, call: { ...shape, ...randomInputs(shape, 5), params: {}, tables: {} } };
  };

  it('one by one and queued back to back: every launch timed, positive, min <= median, and no event or buffer left behind', async () => {
    const { kernel, call } = causalCall();
    const before = backend!.memoryInfo().free;
    for (const queued of [false, true]) {
      const t = await backend!.time(kernel, call, 9, 2, { queued });
      expect(t.iters).toBe(9);
      expect(t.minMs).toBeGreaterThan(0);
      expect(t.minMs).toBeLessThanOrEqual(t.medianMs);
      expect(t.medianMs).toBeLessThanOrEqual(t.p90Ms);
      // a kernel of 2 * 4 * 2048^2 * 64 * 2 flops cannot take a second, nor less than a microsecond
      expect(t.medianMs).toBeLessThan(1000);
      expect(t.medianMs).toBeGreaterThan(1e-3);
    }
    expect(before - backend!.memoryInfo().free).toBeLessThanOrEqual(2 * 1024 * 1024);
  }, 120_000);

  it('with the clock probe: every launch in order, each with an SM clock a GPU can run at; not with queued launches', async () => {
    const { kernel, call } = causalCall();
    const t = await backend!.time(kernel, call, 7, 1, { clockProbe: true });
    expect(t.launches).toHaveLength(7);
    expect(Math.min(...t.launches!.map((l) => l.ms))).toBe(t.minMs);
    for (const { mhz } of t.launches!) expect(mhz > 200 && mhz < 4000, `probe read ${mhz} MHz`).toBe(true);
    await expect(backend!.time(kernel, call, 3, 1, { clockProbe: true, queued: true })).rejects.toThrow(/clock probe/);
  }, 120_000);
});
