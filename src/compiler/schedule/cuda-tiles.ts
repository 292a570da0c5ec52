// Tile sizes of the CUDA kernels.
//
// Tensor-core path (f16/bf16): one warp owns 16 query rows (one m16 MMA row
// block), so BM = 16 * warps; Q stays in registers (D/16 x 4 regs), the S tile
// 16 x BN in f32 registers (BN/2 per thread) and O 16 x D (D/2 per thread).
// With D <= 128 and BN = 64 that is ~32 + 32 + 64 registers of state, which
// fits 255 without spills; 2 pipeline stages of K and V in shared memory.
//
// f32 path (CUDA cores): 4 threads per query row, 32 rows per block, BN = 32.
import type { StorageDType } from '../manifest.ts';

export interface CudaTiles {
  kind: 'mma' | 'simt';
  bm: number;
  bn: number;
  warps: number;
  threads: number;
  stages: number;
  /** Shared-memory row stride in elements (D + padding: 16 bytes keeps ldmatrix/LDS.128 conflict-free). */
  stride: number;
  /** Dynamic shared memory in bytes (the static tables come on top, see the manifest). */
  smemBytes: number;
}

export function chooseCudaTiles(dtype: StorageDType, headDim: number, overrides: { warps?: number; bn?: number } = {}): CudaTiles {
  if (dtype === 'f32') {
    if (headDim % 16 !== 0 || headDim > 256) throw new Error(`cuda f32: head_dim ${headDim} must be a multiple of 16 and at most 256`);
    const bm = 32, bn = 32, stages = 2, stride = headDim + 4;
    const smemBytes = 4 * (bm * stride + 2 * stages * bn * stride + bm * (bn + 1));
    return { kind: 'simt', bm, bn, warps: 4, threads: 128, stages, stride, smemBytes };
  }
  if (headDim % 16 !== 0 || headDim > 256) throw new Error(`cuda ${dtype}: head_dim ${headDim} must be a multiple of 16 and at most 256`);
  const warps = overrides.warps ?? 4;
  const bn = overrides.bn ?? (headDim <= 128 ? 64 : 32);
  const bm = 16 * warps, stages = 2, stride = headDim + 8;
  const smemBytes = 2 * (bm * stride + 2 * stages * bn * stride);
  return { kind: 'mma', bm, bn, warps, threads: 32 * warps, stages, stride, smemBytes };
}
