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
}

export interface TileOverrides { warps?: number; bn?: number; mt?: number }

export function chooseCudaTiles(dtype: StorageDType, headDim: number, overrides: TileOverrides = {}, arch: 'sm_80' | 'sm_90a' = 'sm_80'): CudaTiles {
  if (arch === 'sm_90a' && dtype !== 'f32' && (headDim === 64 || headDim === 128)) return wgmmaTiles(headDim, overrides);
  if (dtype === 'f32') {
    if (headDim % 16 !== 0 || headDim > 256) throw new Error(`cuda f32: head_dim ${headDim} must be a multiple of 16 and at most 256`);
    const bm = 32, bn = 32, stages = 2, stride = headDim + 4;
    const smemBytes = 4 * (bm * stride + 2 * stages * bn * stride + bm * (bn + 1));
    return { kind: 'simt', bm, bn, warps: 4, mt: 1, threads: 128, stages, stride, smemBytes };
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
  return { kind: 'mma', bm, bn, warps, mt, threads: 32 * warps, stages, stride, smemBytes };
}

/**
 * Hopper (sm_90a) warpgroup-MMA path: warpgroups of 64 query rows (default 2:
 * BM = 128, 256 threads), BN keys per tile; Q, K and V live in shared memory
 * as 128-byte-swizzled atoms (1 KiB of slack to align them), plus an O staging
 * area of BM rows of STRIDE elements that reuses Q's space at the end.
 * Head dims that are not a multiple of 64 keep the mma.sync kernel.
 *
 * Measured on an H200 (bf16, B2 H16 N16384, TFLOP/s causal / scale_invariant;
 * `npx tsx scripts/cuda-bench.ts --variants ...`, tests/cuda/results/h200-2026-11-29-tile-sweep.txt):
 *   D=128: 8 warps BN 128: 458 / 400;  12 warps BN 64: 464 / 400 (within run-to-run noise; 8 warps
 *          kept);  earlier build: 8 warps BN 64: 402 / 327;  4 warps BN 128: 274 / 206.
 *   D=64:  8 warps BN 192: 341 / 276;  8 warps BN 128: 324 / 263;  earlier build: 12 warps BN 128:
 *          334 / 279 (spills for some specs at 168 registers);  12 warps BN 64: 303 / 267.
 */
function wgmmaTiles(headDim: number, o: TileOverrides): CudaTiles {
  const warps = o.warps ?? 8, bn = o.bn ?? (headDim <= 64 ? 192 : 128), stages = 2, stride = headDim + 8;
  if (![4, 8, 12].includes(warps)) throw new Error(`cuda sm_90a: ${warps} warps: must be 4, 8 or 12 (whole warpgroups)`);
  if (![64, 128, 192, 256].includes(bn)) throw new Error(`cuda sm_90a: BN ${bn} must be 64, 128, 192 or 256`);
  const bm = 16 * warps;
  const tiles = 2 * (bm * headDim + 2 * stages * bn * headDim);
  const smemBytes = Math.max(tiles, 2 * bm * stride) + 1024;
  return { kind: 'wgmma', bm, bn, warps, mt: 1, threads: 32 * warps, stages, stride, smemBytes };
}
