// Short-row kernel variants (schedule/cuda-tiles.ts shortRowTiles): which
// specs carry one, what the manifest says about it, and the launch rule
// (render/cuda.ts cudaLaunchFor) that every loader follows.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cudaLaunches, cudaLaunchFor, renderCuda, type CudaRenderOptions } from '../../src/compiler/render/cuda.ts';
import { loadExamples } from './suite.ts';

const render = (name: string, o: Partial<CudaRenderOptions> = {}) =>
  renderCuda(loadExamples([name])[0].lowered, { dtype: 'bf16', headDim: 64, hash: 'h', version: 'v', arch: 'sm_90a', ...o });
const entries = (source: string) => [...source.matchAll(/extern "C" __global__ void __launch_bounds__\(\d+, \d\) (\w+)\(/g)].map((m) => m[1]);

describe('cuda short-row variants', () => {
  it('document (tile tests read its ids) gets a 64-row kernel for Nk <= 4096 at D=128; at D=64 its persistent kernel runs every length', () => {
    expect(cudaLaunches(render('document', { headDim: 64 }).manifest)).toHaveLength(1);
    const k = render('document', { headDim: 128 });
    const [main, short] = cudaLaunches(k.manifest);
    expect(short).toBeDefined();
    expect(short.entryPoint).toBe(`${k.manifest.entryPoint}_short`);
    expect([main.bm, short.bm]).toEqual([128, 64]);
    // both kernels are in the one source, and only they
    expect(entries(k.source).sort()).toEqual([main.entryPoint, short.entryPoint].sort());
    expect(k.source).toContain(`// Short rows (Nk <= 4096): ${short.entryPoint}`);
    expect((k.manifest.abi.variants as Array<{ maxNk: number }>)[0].maxNk).toBe(4096);
    expect(k.manifest.analysis.tileTestReadsTables).toBe(true);
    expect([short.block[0], short.blocksPerSm]).toEqual([256, 2]);
  });

  it('none for specs whose tiles are classified from indices alone, for explicit tiles, sm_80 and f32', () => {
    for (const name of ['causal', 'sliding_window', 'scale_invariant', 'alibi']) {
      expect(cudaLaunches(render(name).manifest), name).toHaveLength(1);
      expect(render(name).manifest.analysis.tileTestReadsTables, name).toBe(false);
    }
    expect(cudaLaunches(render('document', { tiles: { warps: 8 } }).manifest)).toHaveLength(1);
    expect(cudaLaunches(render('document', { arch: 'sm_80' }).manifest)).toHaveLength(1);
    expect(cudaLaunches(render('document', { dtype: 'f32' }).manifest)).toHaveLength(1);
  });

  it('launch rule: the variant up to maxNk, the main kernel above it (property over Nk)', () => {
    const m = render('document', { headDim: 128 }).manifest;
    const [main, short] = cudaLaunches(m);
    fc.assert(fc.property(fc.integer({ min: 1, max: 1 << 20 }), (Nk) => {
      expect(cudaLaunchFor(m, Nk).entryPoint).toBe(Nk <= 4096 ? short.entryPoint : main.entryPoint);
    }));
    const causal = render('causal').manifest;
    expect(cudaLaunchFor(causal, 1).entryPoint).toBe(causal.entryPoint);
  });
});
