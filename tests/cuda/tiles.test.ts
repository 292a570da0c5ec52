// The Hopper tile schedule (src/compiler/schedule/cuda-tiles.ts): which
// kernel shape each spec gets, and that what it picks fits the SM.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chooseCudaTiles, launchRegs, wgmmaQElems, type TileHints } from '../../src/compiler/schedule/cuda-tiles.ts';
import { renderCuda, tilesLineOf } from '../../src/compiler/render/cuda.ts';
import { loadExamples } from './suite.ts';

const SMEM_LIMIT = 227 * 1024;
const hopper = (headDim: number, hints: TileHints = {}, overrides = {}) => chooseCudaTiles('bf16', headDim, overrides, 'sm_90a', hints);

describe('cuda tiles: sm_90a defaults', () => {
  it('D=64: producer, 3 stages, softmax overlapped with P V, BN 128, persistent; row sums on the tensor cores for per-diagonal tables', () => {
    const t = hopper(64);
    // the persistent item loop costs the producer 8 registers
    expect([t.kind, t.threads, t.stages, t.bn, t.overlap, t.persistent, t.producerRegs, t.consumerRegs]).toEqual(['wgmma', 384, 3, 128, true, true, 48, 224]);
    const single = hopper(64, {}, { persistent: false });
    expect([single.producerRegs, single.consumerRegs]).toEqual([40, 232]);
    expect(t.rowSumMma).toBe(false);
    const diag = hopper(64, { diagTables: true, tableBytes: (bm, bn, s) => s * 8 * (bm + bn - 1) });
    expect([diag.bn, diag.stages, diag.overlap, diag.persistent, diag.rowSumMma]).toEqual([128, 3, true, true, true]);
  });

  it('D=128: 3 stages and the overlap only where they fit next to the tables and the consumers keep 232 registers', () => {
    const plain = hopper(128);
    expect([plain.stages, plain.overlap, plain.bn]).toEqual([3, true, 128]);
    // scale_invariant: two f32 per-diagonal tables per stage
    expect([plain.persistent, plain.rowSumMma]).toEqual([false, false]);
    // scale_invariant: two f32 per-diagonal tables per stage fit 3 stages at BN 96 (not persistent at D=128),
    // its row sums on the tensor cores, whose 256 bytes of ones are counted
    const diagHints = { diagTables: true, tableBytes: (bm: number, bn: number, s: number) => s * 8 * (bm + bn - 1) };
    const diag = hopper(128, diagHints);
    expect([diag.bn, diag.stages, diag.overlap, diag.persistent, diag.producerRegs, diag.rowSumMma]).toEqual([96, 3, true, false, 40, true]);
    expect(diag.smemBytes - hopper(128, diagHints, { rowSumMma: false }).smemBytes).toBe(256);
    // twelve times those tables leave room for 2 stages only, one tile at a time
    const wide = hopper(128, { diagTables: true, tableBytes: (bm, bn, s) => s * 96 * (bm + bn - 1) });
    expect([wide.bn, wide.stages, wide.overlap]).toEqual([96, 2, false]);
    // document: the producer scans a table (56 registers), which leaves the consumers 224
    const scan = hopper(128, { tableTileTest: true, tableBytes: (_bm, bn, s) => s * 4 * bn });
    expect([scan.stages, scan.overlap, scan.producerRegs, scan.consumerRegs]).toEqual([2, false, 56, 224]);
  });

  it('per-diagonal values carried in the producer\'s registers, or read while S is computed: on by default at D=128 (where they paid), off at D=64, on where asked and possible', () => {
    const two: TileHints = { diagTables: true, diagValues: 2, tableBytes: (bm, bn, s) => s * 8 * (bm + bn - 1) };
    expect([hopper(64, two).diagCarry, hopper(64, two).diagPrefetch]).toEqual([false, false]);
    expect([hopper(128, two).diagCarry, hopper(128, two).diagPrefetch, hopper(128, two).bn]).toEqual([true, true, 96]);
    // off where asked, and never without per-diagonal tables
    expect([hopper(128, two, { diagCarry: false, diagPrefetch: false }).diagCarry, hopper(128, two, { diagCarry: false, diagPrefetch: false }).diagPrefetch]).toEqual([false, false]);
    expect([hopper(128, {}).diagCarry, hopper(128, {}).diagPrefetch]).toEqual([false, false]);
    // by default the early reads step aside where their registers would spill (twelve values: 312), the throw is for asking
    expect(hopper(128, { ...two, diagValues: 12, tableBytes: (bm, bn, s) => s * 48 * (bm + bn - 1) }).diagPrefetch).toBe(false);
    const on = { diagCarry: true, diagPrefetch: true };
    // scale_invariant: BN 128 at D=64 (68 registers for the early reads), BN 96 at D=128 (52)
    for (const D of [64, 128]) expect([hopper(D, two, on).diagCarry, hopper(D, two, on).diagPrefetch]).toEqual([true, true]);
    // nothing to carry or read without per-diagonal tables, no producer to carry them without a producer
    expect([hopper(64, {}, on).diagCarry, hopper(64, {}, on).diagPrefetch]).toEqual([false, false]);
    expect([hopper(128, two, { ...on, producer: false }).diagCarry, hopper(128, two, { ...on, producer: false }).diagPrefetch]).toEqual([false, false]);
    // the carry: one producer thread per diagonal of a tile's width, so BN 160 has more diagonals per step than 128 threads
    expect(() => hopper(64, two, { bn: 160, diagCarry: true })).toThrow(/BN <= 128/);
    // the early reads: BN 160 would take 84 registers (it spilled), twelve values at BN 96 312
    expect(() => hopper(64, two, { bn: 160, diagPrefetch: true })).toThrow(/84 registers/);
    expect(() => hopper(128, { ...two, diagValues: 12, tableBytes: (bm, bn, s) => s * 48 * (bm + bn - 1) }, { diagPrefetch: true })).toThrow(/312 registers/);
    // three consumer warpgroups have 152 registers a thread: BN 96's 52 with S, P and O come to 156 (it spilled), BN 64's 36 to 116
    const twelve = { warps: 12, stages: 3, overlap: true, persistent: true, diagPrefetch: true };
    expect(() => hopper(64, two, { ...twelve, bn: 96 })).toThrow(/52 registers .* 156 of its 152/);
    const t64 = hopper(64, two, { ...twelve, bn: 64 });
    expect([t64.consumerRegs, t64.diagPrefetch]).toEqual([152, true]);
  });

  it('three consumer warpgroups: the producer at 32 registers where not persistent (160 a consumer thread), 48 persistent, 56 scanning', () => {
    const regs = (t: { producerRegs: number; consumerRegs: number }) => [t.producerRegs, t.consumerRegs];
    expect(regs(hopper(64, {}, { warps: 12, bn: 128, stages: 3, overlap: true, persistent: false }))).toEqual([32, 160]);
    expect(regs(hopper(64, {}, { warps: 12, bn: 96, stages: 3, overlap: true, persistent: true }))).toEqual([48, 152]);
    expect(regs(hopper(64, { tableTileTest: true }, { warps: 12, bn: 96, stages: 3, overlap: true, persistent: false }))).toEqual([56, 152]);
    // carried per-diagonal values keep the producer at 40 (at 32 it spilled)
    const two: TileHints = { diagTables: true, diagValues: 2, tableBytes: (bm, bn, s) => s * 8 * (bm + bn - 1) };
    expect(regs(hopper(64, two, { warps: 12, bn: 96, stages: 3, overlap: true, persistent: false, diagCarry: true }))).toEqual([40, 152]);
    expect(regs(hopper(64, two, { warps: 12, bn: 96, stages: 3, overlap: true, persistent: false }))).toEqual([32, 160]);
    // two consumer warpgroups keep their 40 (232 a thread, the cap of 240 not reached either way)
    expect(regs(hopper(128, {}, {}))).toEqual([40, 232]);
  });

  it('the zero reference for bf16 beside per-diagonal tables at D=128; P V waited for early where the logit does not fold', () => {
    const diagHints: TileHints = { diagTables: true, tableBytes: (bm, bn, s) => s * 8 * (bm + bn - 1) };
    const si = hopper(128, diagHints);
    expect([si.zeroRef, si.earlyPvWait]).toEqual([{ low: 32, high: 32 }, true]);
    // f16 keeps P below 65504 and its largest weight at 1 or more: its window would be [0, 8], and it is off by default
    const f16 = chooseCudaTiles('f16', 128, {}, 'sm_90a', diagHints);
    expect([f16.zeroRef, f16.earlyPvWait]).toEqual([null, true]);
    expect(chooseCudaTiles('f16', 128, { zeroRef: true }, 'sm_90a', diagHints).zeroRef).toEqual({ low: 0, high: 8 });
    // D=64 beside the tables: both, and two chains for the vote's row max, in the 8-warp kernel and the 12-warp long-row
    // one (bf16 only; asking for no zero reference takes the other two back)
    const si64 = hopper(64, diagHints);
    expect([si64.zeroRef, si64.earlyPvWait, si64.twoChains]).toEqual([{ low: 32, high: 32 }, true, true]);
    const long64 = hopper(64, diagHints, { warps: 12, bn: 96, persistent: true });
    expect([long64.zeroRef, long64.earlyPvWait, long64.twoChains, long64.rowSumMma]).toEqual([{ low: 32, high: 32 }, true, true, true]);
    const long64f16 = chooseCudaTiles('f16', 64, { warps: 12, bn: 96, persistent: true }, 'sm_90a', diagHints);
    expect([long64f16.zeroRef, long64f16.earlyPvWait, long64f16.twoChains]).toEqual([null, false, false]);
    const long64off = hopper(64, diagHints, { warps: 12, bn: 96, persistent: true, zeroRef: false });
    expect([long64off.zeroRef, long64off.earlyPvWait, long64off.twoChains]).toEqual([null, false, false]);
    // and what the compiler renders for scale_invariant: its long-row kernel says so in the header
    const siSpec = loadExamples(['scale_invariant'])[0];
    const header = renderCuda(siSpec.lowered, { dtype: 'bf16', headDim: 64, hash: 't', version: 't', arch: 'sm_90a' }).source.split('\n').find((l) => l.startsWith('// Long rows'))!;
    expect(header).toMatch(/row max in two chains.*P V waited for before the softmax, O rescaled only where a reference moved, the zero reference checked on the packed P, zero reference/);
    // O's rescale inside the softmax's general path wherever the early wait meets the zero reference; the packed check only when asked
    // and the zero reference's check on the packed P, where the row sums are on the tensor cores
    expect([si.rescaleInSoftmax, long64.rescaleInSoftmax, si64.rescaleInSoftmax, hopper(64).rescaleInSoftmax]).toEqual([true, true, true, false]);
    expect([si.packedRefCheck, long64.packedRefCheck, si64.packedRefCheck, long64off.packedRefCheck]).toEqual([true, true, true, false]);
    expect(hopper(128, diagHints, { packedRefCheck: false }).packedRefCheck).toBe(false);
    expect(hopper(128, diagHints, { rowSumMma: false }).packedRefCheck).toBe(false);
    expect(() => hopper(128, diagHints, { packedRefCheck: true, rescaleInSoftmax: false })).toThrow(/packed P/);
    expect(() => hopper(64, {}, { rescaleInSoftmax: true })).toThrow(/inside the softmax/);
    // a folded logit (causal) has neither, and refuses the zero reference
    const folded = hopper(128, { foldedScale: true });
    expect([folded.foldScale, folded.zeroRef, folded.earlyPvWait]).toEqual([true, null, false]);
    expect(() => hopper(128, { foldedScale: true }, { zeroRef: true })).toThrow(/zero reference/);
    // an affine logit that does not fold and reads no tables (alibi): the early wait at D=64 and 128, no zero reference
    for (const D of [64, 128]) expect([hopper(D, { affineLogit: true }).zeroRef, hopper(D, { affineLogit: true }).earlyPvWait, hopper(D, { affineLogit: true }).rowSumMma]).toEqual([null, true, false]);
    // a logit that is no affine function of the dot (softcap's tanh): the zero reference, checked on the packed P, with
    // the row sums on the tensor cores (bf16 only; asking for no zero reference takes the row sums back too)
    for (const D of [64, 128]) {
      const sc = hopper(D, { affineLogit: false });
      expect([sc.zeroRef, sc.earlyPvWait, sc.rowSumMma, sc.rescaleInSoftmax, sc.packedRefCheck]).toEqual([{ low: 32, high: 32 }, true, true, true, true]);
      const scF16 = chooseCudaTiles('f16', D, {}, 'sm_90a', { affineLogit: false });
      expect([scF16.zeroRef, scF16.rowSumMma, scF16.packedRefCheck]).toEqual([null, false, false]);
      const scOff = hopper(D, { affineLogit: false }, { zeroRef: false });
      expect([scOff.zeroRef, scOff.rowSumMma, scOff.packedRefCheck]).toEqual([null, false, false]);
    }
    // the early wait belongs to the overlapped loop
    expect(() => hopper(128, {}, { stages: 2, earlyPvWait: true })).toThrow(/overlapped loop/);
  });

  it('pingpong by default: not for banded masks (windows), table-scanning tile tests (documents) or per-diagonal tables', () => {
    const takesTurns = (name: string, D: number) => {
      const spec = loadExamples([name])[0];
      return /warpgroups take turns/.test(tilesLineOf(renderCuda(spec.lowered, { dtype: 'bf16', headDim: D, hash: 'p', version: 'p', arch: 'sm_90a' }).source) ?? '');
    };
    for (const D of [64, 128]) {
      expect(['causal', 'alibi', 'softcap', 'prefix_lm'].map((n) => takesTurns(n, D))).toEqual([true, true, true, true]);
      expect(['sliding_window', 'sinks_window', 'document', 'scale_invariant'].map((n) => takesTurns(n, D))).toEqual([false, false, false, false]);
    }
  });

  it('pingpong: only for the overlapped loop of two consumer warpgroups; each turn syncs before its products and arrives for the other after', () => {
    // on by default in the overlapped loop of two consumer warpgroups, but not beside per-diagonal tables (measured)
    expect(hopper(128).pingpong).toBe(true);
    expect(hopper(64).pingpong).toBe(true);
    expect(hopper(128, { diagTables: true }).pingpong).toBe(false);
    expect(hopper(128, {}, { pingpong: false }).pingpong).toBe(false);
    expect(hopper(128, {}, { stages: 2 }).pingpong).toBe(false);
    expect(hopper(128, { diagTables: true }, { pingpong: true }).pingpong).toBe(true);
    expect(() => hopper(128, {}, { pingpong: true, stages: 2 })).toThrow(/pingpong/);
    expect(() => hopper(128, {}, { pingpong: true, warps: 12 })).toThrow(/pingpong/);
    const spec = loadExamples(['scale_invariant'])[0];
    const src = renderCuda(spec.lowered, { dtype: 'bf16', headDim: 128, hash: 'p', version: 'p', arch: 'sm_90a', tiles: { pingpong: true } }).source;
    // warpgroup 1 lets warpgroup 0 go first, once, before the item loop
    expect(src.match(/attnc_bar_arrive\(3, NCONSUMERS\)/g)).toHaveLength(2);  // that one and warpgroup 1's turn in the loop
    expect(src).toMatch(/if \(wg == 1\) attnc_bar_arrive\(3, NCONSUMERS\);\s+for \(int item = item0/);
    // in the loop: the turn, S and P V issued, then the other's turn, then the wait for S
    const loop = src.slice(src.indexOf('for (;; ++k) {', src.indexOf('consumer warpgroups')));
    const at = (re: RegExp) => loop.search(re);
    const turn = at(/attnc_bar_sync\(3, NCONSUMERS\); else attnc_bar_sync\(4, NCONSUMERS\)/);
    const firstIssue = at(/attnc_wgmma_ss</), lastIssue = loop.lastIndexOf('attnc_wgmma_rs_ones', at(/attnc_wg_wait<1>/));
    const handOver = at(/attnc_bar_arrive\(4, NCONSUMERS\); else attnc_bar_arrive\(3, NCONSUMERS\)/);
    expect([turn < firstIssue, lastIssue < handOver, handOver < at(/attnc_wg_wait<1>/)]).toEqual([true, true, true]);
    expect(turn).toBeGreaterThan(0);
  });

  it('overrides: no producer means 2 stages and no overlap; a BN wgmma cannot tile is refused', () => {
    const t = hopper(128, {}, { producer: false });
    expect([t.threads, t.stages, t.overlap, t.producerRegs]).toEqual([256, 2, false, 0]);
    expect(hopper(64, {}, { overlap: false }).overlap).toBe(false);
    expect(() => hopper(64, {}, { bn: 100 })).toThrow(/BN 100 must be a multiple of 32/);
    expect(() => hopper(64, {}, { producer: false, stages: 3 })).toThrow(/3 stages/);
  });

  it('2 blocks per SM: half the register file and of the shared memory each (less 1 KiB)', () => {
    const t = hopper(64, {}, { warps: 4, ctas: 2 });
    expect([t.threads, t.stages, t.overlap, t.producerRegs, t.consumerRegs]).toEqual([256, 3, true, 40, 216]);
    expect(2 * (128 * t.producerRegs + 128 * t.consumerRegs)).toBeLessThanOrEqual(65536);
    // D=128, BN 64: a third stage (115 712 bytes) plus the 512 bytes of barriers no longer fits in 113 KiB.
    expect(hopper(128, {}, { warps: 4, bn: 64, ctas: 2 }).stages).toBe(2);
    expect(() => hopper(128, {}, { warps: 4, bn: 64, ctas: 2, stages: 3 })).toThrow(/more than 113 KiB \(2 blocks per SM\)/);
    expect(() => hopper(64, {}, { ctas: 3 })).toThrow(/3 blocks per SM/);
    expect(renderCuda(loadExamples(['causal'])[0].lowered, { dtype: 'bf16', headDim: 64, hash: 'h', version: 'v', arch: 'sm_90a', tiles: { warps: 4, ctas: 2 } }).source)
      .toContain('__launch_bounds__(256, 2)');
  });

  it('persistent: by default where the 3 stages and the overlap stay', () => {
    const d64 = hopper(64);
    expect([d64.persistent, d64.stages, d64.overlap, d64.producerRegs, d64.consumerRegs]).toEqual([true, 3, true, 48, 224]);
    // two Q buffers sized for the O staging: BM x STRIDE = 128 x 72 elements, 18 KiB each
    expect(d64.smemBytes).toBe(2 * (2 * 128 * 72 + 2 * 3 * 128 * 64) + 1024);
    // a table-scanning producer (document ids) keeps 56 + 24 registers, which leaves the consumers 208
    const scan = hopper(64, { tableTileTest: true });
    expect([scan.persistent, scan.producerRegs, scan.consumerRegs]).toEqual([true, 80, 208]);
    // D=128: two Q buffers next to 3 stages do not fit, and the 3-stage overlap wins over persistence
    const wide = hopper(128);
    expect([wide.persistent, wide.stages, wide.overlap]).toEqual([false, 3, true]);
    expect(() => hopper(64, {}, { producer: false, persistent: true })).toThrow(/needs the producer/);
    // the snake item order: the default of a persistent kernel, plain round robin where asked, refused for one item per block
    expect([d64.snakeOrder, hopper(64, {}, { snakeOrder: false }).snakeOrder, wide.snakeOrder]).toEqual([true, false, false]);
    expect(() => hopper(128, {}, { snakeOrder: true })).toThrow(/snake item order is for a persistent kernel/);
  });

  it('manifests: which examples are persistent, with the grid a loader should launch', () => {
    const abi = (name: string, D: number) => renderCuda(loadExamples([name])[0].lowered, { dtype: 'bf16', headDim: D, hash: 'h', version: 'v', arch: 'sm_90a' }).manifest.abi as { persistent?: boolean; persistentGrid?: string[] };
    const persistent = Object.fromEntries(loadExamples().map((s) => [s.name, [64, 128].map((D) => abi(s.name, D).persistent ?? false)]));
    expect(persistent).toEqual({
      alibi: [true, false], causal: [true, false], document: [true, false], logn: [true, false], prefix_lm: [true, false],
      scale_invariant: [true, false], scale_invariant_window: [true, false], sinks_window: [true, false], sliding_window: [true, false], softcap: [true, false],
    });
    expect(abi('sliding_window', 64).persistentGrid).toEqual(['min(ceil(Nq / tile.bm) * Hq * B, sms * blocksPerSm)', '1', '1']);
  });

  it('property: dynamic plus table shared memory always fits, and the overlap always has a third stage', () => {
    fc.assert(fc.property(
      fc.constantFrom(64, 128), fc.nat({ max: 4 }), fc.nat({ max: 4 }), fc.boolean(), fc.boolean(),
      (headDim, cols, diags, scan, diagHint) => {
        const tableBytes = (bm: number, bn: number, s: number) => s * 4 * (cols * bn + diags * (bm + bn - 1));
        const t = hopper(headDim, { tableTileTest: scan, diagTables: diagHint && diags > 0, tableBytes });
        expect(t.smemBytes + tableBytes(t.bm, t.bn, t.stages)).toBeLessThanOrEqual(SMEM_LIMIT);
        if (t.overlap) expect(t.stages).toBe(3);
        if (t.persistent) {
          // each Q buffer holds the O staging too (so it never runs over a stage the producer is refilling), in whole KiB
          const q = wgmmaQElems(t.bm, headDim, t.stride);
          expect(q).toBeGreaterThanOrEqual(t.bm * t.stride);
          expect((2 * q) % 1024).toBe(0);
          expect(t.smemBytes).toBeGreaterThanOrEqual(2 * (2 * q + 2 * t.stages * t.bn * headDim));
        }
        expect(128 * t.producerRegs + (t.threads - 128) * t.consumerRegs).toBeLessThanOrEqual(launchRegs(t.threads, t.ctas) * t.threads);
      }));
  });

  it('property: setmaxnreg never asks for more registers than the block was launched with (an increase past the pool hangs)', () => {
    fc.assert(fc.property(
      fc.constantFrom(64, 128), fc.constantFrom(4, 8, 12), fc.constantFrom(1, 2), fc.boolean(), fc.constantFrom(64, 128),
      (headDim, warps, ctas, scan, bn) => {
        let t;
        try { t = hopper(headDim, { tableTileTest: scan }, { warps, ctas, bn }); } catch { return; }  // does not fit: refused, not hung
        if (!t.producerRegs) return;
        expect(128 * t.producerRegs + (t.threads - 128) * t.consumerRegs).toBeLessThanOrEqual(launchRegs(t.threads, ctas) * t.threads);
      }));
    // The case that hung: 8 consumer warps, a producer, 2 blocks per SM: 80 registers per thread at launch.
    const hung = hopper(64, {}, { warps: 8, bn: 64, ctas: 2 });
    expect([launchRegs(384, 2), hung.consumerRegs]).toEqual([80, 96]);
  });

  it('every example: the rendered header says what the schedule chose', () => {
    for (const spec of loadExamples()) for (const D of [64, 128]) {
      const k = renderCuda(spec.lowered, { dtype: 'bf16', headDim: D, hash: 't', version: 't', arch: 'sm_90a' });
      const tilesLine = k.source.split('\n').find((l) => l.startsWith('// Tiles:'))!;
      const overlapped = k.source.includes('attnc_wg_wait<1>();');
      expect(tilesLine.includes('softmax overlapped with P V'), `${spec.name} D=${D}: ${tilesLine}`).toBe(overlapped);
      if (D === 64) expect(overlapped, `${spec.name} D=64 is overlapped`).toBe(true);
    }
  });
});
