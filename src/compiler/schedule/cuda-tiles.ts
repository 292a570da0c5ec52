// Tile sizes of the CUDA kernels.
//
// Tensor-core path (f16/bf16): one warp owns mt m16 row tiles (16 * mt query
// rows), so BM = 16 * mt * warps; per thread the S tile takes mt * BN/2 f32
// registers and O mt * D/2; Q stays in registers when it fits (mt = 1 or
// D <= 64), otherwise its fragments are re-read from shared memory per
// k-step. 2 pipeline stages of K and V in shared memory.
//
// f32 path (CUDA cores): 4 threads per query row, 32 rows per block, BN = 32.
import type { StorageDType } from '../manifest.ts';

export interface CudaTiles {
  kind: 'wgmma' | 'mma' | 'simt';
  bm: number;
  bn: number;
  warps: number;
  /** m16 row tiles per warp (tensor-core path): each K/V fragment read from shared memory feeds mt MMAs. */
  mt: number;
  threads: number;
  stages: number;
  /** Shared-memory row stride in elements (D + padding: 16 bytes keeps ldmatrix/LDS.128 conflict-free). */
  stride: number;
  /** Dynamic shared memory in bytes (the static tables come on top, see the manifest). */
  smemBytes: number;
  /**
   * wgmma only: a producer warpgroup (128 more threads) stages K/V and the tables
   * while `warps` consumer warps compute (render/cuda-wgmma-ws.ts), with these
   * per-thread register budgets (setmaxnreg); 0 when there is none.
   */
  producerRegs: number;
  consumerRegs: number;
}

export interface TileOverrides { warps?: number; bn?: number; mt?: number; producer?: boolean; stages?: number }

/** What the schedule needs to know about the spec. */
export interface TileHints {
  /** The tile-live test reads tables over each tile's keys (per-thread scans at run time, e.g. document ids). */
  tableTileTest?: boolean;
}

export function chooseCudaTiles(dtype: StorageDType, headDim: number, overrides: TileOverrides = {}, arch: 'sm_80' | 'sm_90a' = 'sm_80', hints: TileHints = {}): CudaTiles {
  if (arch === 'sm_90a' && dtype !== 'f32' && (headDim === 64 || headDim === 128)) return wgmmaTiles(headDim, overrides, hints);
  if (dtype === 'f32') {
    if (headDim % 16 !== 0 || headDim > 256) throw new Error(`cuda f32: head_dim ${headDim} must be a multiple of 16 and at most 256`);
    const bm = 32, bn = 32, stages = 2, stride = headDim + 4;
    const smemBytes = 4 * (bm * stride + 2 * stages * bn * stride + bm * (bn + 1));
    return { kind: 'simt', bm, bn, warps: 4, mt: 1, threads: 128, stages, stride, smemBytes, producerRegs: 0, consumerRegs: 0 };
  }
  if (headDim % 16 !== 0 || headDim > 256) throw new Error(`cuda ${dtype}: head_dim ${headDim} must be a multiple of 16 and at most 256`);
  // Measured on an H100 (causal, bf16, B2 H16 N16384; scripts/cuda-bench.ts):
  //   D=128: 4 warps x 2 m16 tiles, BN 32: 301 TFLOP/s; 8 warps x 1, BN 64: 270.
  //   D=64:  4 warps x 2 m16 tiles, BN 64: 287 TFLOP/s; 8 warps x 1, BN 64: 232.
  // Two m16 tiles per warp halve the shared-memory reads per MMA (each K/V
  // fragment feeds both). At D=128 that variant (override {warps: 4, mt: 2,
  // bn: 32}) sits at 243-255 registers and spills a few bytes for specs with
  // per-row values or longer masks (logn, sinks_window), so the default there
  // is 8 warps x 1 tile (about 207 registers, never spilled).
  const small = headDim <= 64;
  const warps = overrides.warps ?? (small ? 4 : 8);
  const mt = overrides.mt ?? (small ? 2 : 1);
  const bn = overrides.bn ?? (headDim <= 128 ? 64 : 32);
  const bm = 16 * mt * warps, stages = 2, stride = headDim + 8;
  const smemBytes = 2 * (bm * stride + 2 * stages * bn * stride);
  return { kind: 'mma', bm, bn, warps, mt, threads: 32 * warps, stages, stride, smemBytes, producerRegs: 0, consumerRegs: 0 };
}

/**
 * Hopper (sm_90a) warpgroup-MMA path: warpgroups of 64 query rows (default 2:
 * BM = 128), BN keys per tile; Q, K and V live in shared memory as
 * 128-byte-swizzled atoms (1 KiB of slack to align them), plus an O staging
 * area of BM rows of STRIDE elements that reuses Q's space at the end.
 * Head dims that are not a multiple of 64 keep the mma.sync kernel.
 *
 * D=64 adds a producer warpgroup (render/cuda-wgmma-ws.ts: 384 threads, 3
 * stages); D=128 keeps the consumers' own copies (256 threads, 2 stages: a
 * third stage does not fit next to BN 128, and BN 64 is slower).
 *
 * Measured on an H200 (bf16, B2 H16 N16384, milliseconds; `npx tsx scripts/cuda-bench.ts --variants ...`,
 * tests/cuda/results/h200-2026-12-02-producer-sweep.txt), "p" = producer warpgroup, "p3" = with 3 stages:
 *   D=64   causal   8x192 3.184, 8x192p 3.061, 8x192p3 3.007, 8x128p3 3.045
 *          scale_invariant 8x192 3.953, 8x192p3 3.466, 8x128p3 3.617;  alibi 3.678 -> 3.417 (8x192p3)
 *          document 8x192 1.734, 8x192p3 1.685, 8x128p3 1.615;  sliding_window 0.716 -> 0.642 / 0.633 (8x128p3)
 *   D=128  causal   8x128 4.750, 8x128p 5.223, 8x64p3 5.687;  scale_invariant 8x128 5.472, 8x128p 5.496
 *          alibi 5.224 / 5.496 (p);  document 2.174 / 2.294 (p);  softcap 7.922 / 7.893 (p)
 * (That sweep's build unrolled the producer's copy loop fully, kept 4 loads in flight per table scan and
 * gave every producer 40 registers; it spilled a few bytes for some specs, hence the budgets below and
 * the producer's staging options in cuda-wgmma-ws.ts. bench/results/h200-2026-12-02.json measured these.)
 * Earlier (2026-11-29, tile-sweep.txt): D=128 12 warps BN 64 within noise of 8 warps BN 128; 4 warps
 * BN 128 far slower; D=64 12 warps spills.
 */
function wgmmaTiles(headDim: number, o: TileOverrides, hints: TileHints): CudaTiles {
  const small = headDim <= 64;
  const producer = o.producer ?? small;
  // A table-driven tile test (document ids) costs the producer registers; those masks keep BN 128
  // at D=64 (also the faster tile there: 1.615 vs 1.685 ms for document).
  const warps = o.warps ?? 8, bn = o.bn ?? (small && !hints.tableTileTest ? 192 : 128);
  const stages = o.stages ?? (producer ? 3 : 2), stride = headDim + 8;
  if (![4, 8, 12].includes(warps)) throw new Error(`cuda sm_90a: ${warps} warps: must be 4, 8 or 12 (whole warpgroups)`);
  if (![64, 128, 192, 256].includes(bn)) throw new Error(`cuda sm_90a: BN ${bn} must be 64, 128, 192 or 256`);
  if (stages !== 2 && !(producer && stages === 3)) throw new Error(`cuda sm_90a: ${stages} stages: 2, or 3 with a producer warpgroup`);
  const bm = 16 * warps;
  const tiles = 2 * (bm * headDim + 2 * stages * bn * headDim);
  const smemBytes = Math.max(tiles, 2 * bm * stride) + 1024;
  if (smemBytes > 227 * 1024) throw new Error(`cuda sm_90a: ${smemBytes} bytes of shared memory for BM ${bm}, BN ${bn}, ${stages} stages: more than 227 KiB`);
  // 64 K registers per SM, one block. The producer keeps 40 (copy addresses, tile tests, table fills; 56 when
  // its tile test scans tables, which at 40 spills), the consumers share the rest in multiples of 8
  // (setmaxnreg's granularity), at most 240.
  const consumerThreads = 32 * warps;
  const producerRegs = producer ? (hints.tableTileTest ? 56 : 40) : 0;
  const consumerRegs = producer ? Math.min(240, Math.floor((65536 - 128 * producerRegs) / consumerThreads / 8) * 8) : 0;
  return { kind: 'wgmma', bm, bn, warps, mt: 1, threads: consumerThreads + (producer ? 128 : 0), stages, stride, smemBytes, producerRegs, consumerRegs };
}
