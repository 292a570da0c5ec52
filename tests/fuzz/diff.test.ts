// Differential fuzzing in CI: random valid specs (src/fuzz/diff-gen.ts)
// compiled for the WebGPU adapter (lavapipe here) and compared with the
// float64 reference at compare.ts's tolerances. Lavapipe needs seconds per
// kernel, so the budget is ~60 s of mostly D = 32 kernels at lengths up to
// 200; `npm run fuzz -- --kind diff --seconds N` runs the full range.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openWebGpu } from '../../src/runtime/webgpu.ts';
import type { Backend } from '../../src/runtime/device.ts';
import { diffLoop } from '../../src/fuzz/diff-loop.ts';
import { genDiffSpec } from '../../src/fuzz/diff-gen.ts';
import { compileDiff } from '../../src/fuzz/diff-run.ts';

let backend: Backend | null = null;
try { backend = await openWebGpu(); } catch (e) { console.warn(`tests/fuzz/diff.test.ts: no WebGPU adapter (${(e as Error).message})`); }
afterAll(() => backend?.dispose());

describe('the differential generator', () => {
  it('only produces specs that pass the front end', () => {
    for (let i = 0; i < 300; i++) compileDiff(genDiffSpec(i));
  });
});

(backend ? describe : describe.skip)('differential fuzzing on WebGPU', () => {
  it('random specs and shapes match the float64 reference (fixed seed, 10 specs)', async () => {
    // A fixed number of specs, not a time budget, so a loaded machine runs the same cases.
    const s = await diffLoop(backend!, {
      seed: 7, seconds: 900, maxSpecs: 10, maxLen: 200, maxWork: 60_000, dWeights: [8, 1, 0], shapesPerKernel: 5,
      saveDir: join(tmpdir(), 'attnc-fuzz-regressions'), log: (l) => console.log(l),
    });
    console.log(`diff fuzz: ${s.kernels} kernels, ${s.cases} cases, ${s.mismatches} mismatches, worst error ${(s.worstRatio * 100).toFixed(1)}% of tolerance`);
    expect(s.failures.map((f) => f.spec)).toEqual([]);
    expect(s.specs).toBe(10);
    expect(s.kernels).toBeGreaterThanOrEqual(3);
  }, 900_000);

  it('and their backward kernels match the float64 backward reference (fixed seed, 5 specs)', async () => {
    const s = await diffLoop(backend!, {
      seed: 8, seconds: 900, maxSpecs: 5, maxLen: 120, maxWork: 20_000, dWeights: [1, 0, 0], shapesPerKernel: 3, backward: true,
      saveDir: join(tmpdir(), 'attnc-fuzz-regressions'), log: (l) => console.log(l),
    });
    console.log(`backward diff fuzz: ${s.kernels} kernels, ${s.cases} cases, ${s.mismatches} mismatches, ${s.ambiguous} not compared (kinks), worst error ${(s.worstRatio * 100).toFixed(1)}% of tolerance`);
    expect(s.failures.map((f) => f.spec)).toEqual([]);
    expect(s.specs).toBe(5);
    // Most cases must really have been compared, or the test proves little.
    expect(s.cases - s.ambiguous).toBeGreaterThanOrEqual(10);
  }, 900_000);
});
