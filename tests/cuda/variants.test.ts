// Kernel variants (schedule/cuda-tiles.ts shortRowTiles, longRowTiles): which
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

  it('no short-row kernel for specs whose tiles are classified from indices alone, for explicit tiles, sm_80 and f32', () => {
    for (const name of ['causal', 'sliding_window', 'scale_invariant', 'alibi']) {
      expect(cudaLaunches(render(name, { headDim: 128 }).manifest), name).toHaveLength(1);
      expect(render(name).manifest.analysis.tileTestReadsTables, name).toBe(false);
    }
    expect(cudaLaunches(render('document', { tiles: { warps: 8 } }).manifest)).toHaveLength(1);
    expect(cudaLaunches(render('document', { arch: 'sm_80' }).manifest)).toHaveLength(1);
    expect(cudaLaunches(render('document', { dtype: 'f32' }).manifest)).toHaveLength(1);
  });

  it('launch rule: the short-row variant up to maxNk, the main kernel above it, whatever Nq (property)', () => {
    const m = render('document', { headDim: 128 }).manifest;
    const [main, short] = cudaLaunches(m);
    fc.assert(fc.property(fc.integer({ min: 1, max: 1 << 20 }), fc.integer({ min: 1, max: 1 << 20 }), (Nk, Nq) => {
      expect(cudaLaunchFor(m, Nk, Nq).entryPoint).toBe(Nk <= 4096 ? short.entryPoint : main.entryPoint);
    }));
    const causal = render('causal', { headDim: 128 }).manifest;
    expect(cudaLaunchFor(causal, 1, 1).entryPoint).toBe(causal.entryPoint);
  });
});

describe('cuda long-row variants', () => {
  it('D=64 sm_90a: a 12-warp persistent kernel from 2048 query rows for affine logits, 8192 for a general one', () => {
    for (const [name, minNq] of [['causal', 2048], ['alibi', 2048], ['scale_invariant', 2048], ['softcap', 8192]] as const) {
      for (const dtype of ['bf16', 'f16'] as const) {
        const k = render(name, { dtype });
        const [main, long] = cudaLaunches(k.manifest);
        expect(long?.entryPoint, name).toBe(`${k.manifest.entryPoint}_long`);
        expect([main.bm, long.bm, long.block[0], long.persistent], name).toEqual([128, 192, 512, true]);
        expect(k.manifest.abi.variants as Array<{ minNq: number; maxNk?: number }>).toEqual([expect.objectContaining({ minNq })]);
        expect((k.manifest.abi.variants as Array<{ maxNk?: number }>)[0].maxNk).toBeUndefined();
        expect(entries(k.source).sort()).toEqual([main.entryPoint, long.entryPoint].sort());
        expect(k.source).toContain(`// Long rows (Nq >= ${minNq}): ${long.entryPoint}, BM=192 query rows x BN=96 keys`);
      }
    }
  });

  it('none for banded masks, table-scanning tile tests, D=128, explicit tiles, sm_80 and f32', () => {
    for (const name of ['sliding_window', 'document']) expect(cudaLaunches(render(name).manifest), name).toHaveLength(1);
    expect(cudaLaunches(render('causal', { headDim: 128 }).manifest)).toHaveLength(1);
    expect(cudaLaunches(render('causal', { tiles: { warps: 8 } }).manifest)).toHaveLength(1);
    expect(cudaLaunches(render('causal', { arch: 'sm_80' }).manifest)).toHaveLength(1);
    expect(cudaLaunches(render('causal', { dtype: 'f32' }).manifest)).toHaveLength(1);
  });

  it('launch rule: the long-row variant from minNq query rows, whatever Nk; decode calls keep the main kernel (property)', () => {
    const m = render('scale_invariant').manifest;
    const [main, long] = cudaLaunches(m);
    fc.assert(fc.property(fc.integer({ min: 1, max: 1 << 20 }), fc.integer({ min: 1, max: 1 << 20 }), (Nk, Nq) => {
      expect(cudaLaunchFor(m, Nk, Nq).entryPoint).toBe(Nq >= 2048 ? long.entryPoint : main.entryPoint);
    }));
    expect(cudaLaunchFor(m, 32768, 1).entryPoint).toBe(main.entryPoint);
  });
});
