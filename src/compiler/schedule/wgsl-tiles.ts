// Tile sizes of the WGSL flash-attention kernel, from the device limits and
// the head dim.
//
// Layout (see render/wgsl.ts): a workgroup owns BM query rows; each row is
// served by TPR invocations ("lanes"), so the workgroup has BM * TPR
// invocations. A lane owns D / (4 * TPR) vec4 columns of the output
// accumulator (kept in registers) and computes 1/TPR of the row's BN scores of
// a KV tile. We aim for 4 vec4s (16 floats) of accumulator per lane, which
// keeps registers low on every GPU, and ~128 invocations per workgroup.
//
// Workgroup memory: Q tile BM*D, K and V tiles BN*D each, the score tile
// BM*BN (all f32), plus one BN-long table per hoisted per-key value and one
// (BM+BN-1)-long table per hoisted per-diagonal value.
import type { DeviceLimits } from '../../runtime/device.ts';

export type TileLimits = Pick<DeviceLimits, 'maxWorkgroupStorageBytes' | 'maxInvocationsPerWorkgroup' | 'maxWorkgroupSizeX'>;

export interface WgslTiles {
  /** Query rows per workgroup. */
  bm: number;
  /** Keys per KV tile. */
  bn: number;
  /** Invocations (lanes) per query row. */
  tpr: number;
  /** Invocations per workgroup: bm * tpr. */
  threads: number;
  /** vec4 columns of the head dim, and how many each lane owns. */
  d4: number;
  vecsPerLane: number;
  /** Workgroup memory the kernel declares, in bytes. */
  sharedBytes: number;
}

export interface ExtraTables {
  /** Per-key tables (length BN). */
  col: number;
  /** Per-diagonal tables (length BM + BN - 1). */
  diag: number;
}

const TARGET_THREADS = 128;
const TARGET_VECS_PER_LANE = 4;

/** Lanes per row: the largest divisor of D/4 that still leaves a lane >= 4 vec4s of O (or 1). */
function lanesPerRow(headDim: number): number {
  const d4 = headDim / 4;
  for (let t = d4; t >= 1; t--) {
    if (d4 % t === 0 && d4 / t >= TARGET_VECS_PER_LANE) return t;
  }
  return 1;
}

export function sharedBytesFor(bm: number, bn: number, headDim: number, extra: ExtraTables): number {
  const floats = bm * headDim + 2 * bn * headDim + bm * bn + extra.col * bn + extra.diag * (bm + bn - 1);
  return 4 * floats + 16; // + the per-tile flag word, rounded
}

export function chooseWgslTiles(headDim: number, limits: TileLimits, extra: ExtraTables = { col: 0, diag: 0 }): WgslTiles {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 4 !== 0) {
    throw new Error(`WGSL kernel: head dim ${headDim} is not a positive multiple of 4`);
  }
  const d4 = headDim / 4;
  const tpr = lanesPerRow(headDim);
  const maxThreads = Math.min(limits.maxInvocationsPerWorkgroup, limits.maxWorkgroupSizeX);
  let bm = 1;
  while (bm * 2 * tpr <= Math.min(TARGET_THREADS, maxThreads) && bm < 64) bm *= 2;
  let bn = 64;
  // Shrink BN first (down to 16), then BM, then BN further, until it fits.
  const fits = () => sharedBytesFor(bm, bn, headDim, extra) <= limits.maxWorkgroupStorageBytes;
  while (!fits() && bn > 16) bn /= 2;
  while (!fits() && bm > 8) bm /= 2;
  while (!fits() && bn > 4) bn /= 2;
  while (!fits() && bm > 1) bm /= 2;
  if (!fits()) {
    throw new Error(`WGSL kernel: head dim ${headDim} needs ${sharedBytesFor(bm, bn, headDim, extra)} bytes of workgroup memory, the device offers ${limits.maxWorkgroupStorageBytes}`);
  }
  if (bm * tpr > maxThreads) throw new Error(`WGSL kernel: ${bm * tpr} invocations exceed the device limit ${maxThreads}`);
  return { bm, bn, tpr, threads: bm * tpr, d4, vecsPerLane: d4 / tpr, sharedBytes: sharedBytesFor(bm, bn, headDim, extra) };
}

/**
 * Tiles of the WGSL backward kernels (render/wgsl-bwd.ts), which share one set of constants:
 * each workgroup owns BM rows (query rows for dQ, keys for dK/dV) served by TPR lanes each, as in the
 * forward kernel, and loops over tiles of BN of the other side. Workgroup memory (f32): the two owned
 * tiles (Q and dO, or K and V) BM*D each, the two looped tiles BN*D each, the P and dS tiles BM*BN
 * each, the looped rows' LSE and delta, and one float per lane.
 */
export function chooseWgslBackwardTiles(headDim: number, limits: TileLimits): WgslTiles {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 4 !== 0) {
    throw new Error(`WGSL kernel: head dim ${headDim} is not a positive multiple of 4`);
  }
  const d4 = headDim / 4;
  const tpr = lanesPerRow(headDim);
  const maxThreads = Math.min(limits.maxInvocationsPerWorkgroup, limits.maxWorkgroupSizeX);
  const bytes = (bm: number, bn: number) => 4 * (2 * bm * headDim + 2 * bn * headDim + 2 * bm * bn + 2 * bn + bm * tpr) + 16;
  let bm = 1;
  while (bm * 2 * tpr <= Math.min(TARGET_THREADS, maxThreads) && bm < 64) bm *= 2;
  let bn = 32;
  const fits = () => bytes(bm, bn) <= limits.maxWorkgroupStorageBytes;
  while (!fits() && bn > 8) bn /= 2;
  while (!fits() && bm > 8) bm /= 2;
  while (!fits() && bn > 1) bn /= 2;
  while (!fits() && bm > 1) bm /= 2;
  if (!fits()) {
    throw new Error(`WGSL backward kernels: head dim ${headDim} needs ${bytes(bm, bn)} bytes of workgroup memory, the device offers ${limits.maxWorkgroupStorageBytes}`);
  }
  if (bm * tpr > maxThreads) throw new Error(`WGSL kernel: ${bm * tpr} invocations exceed the device limit ${maxThreads}`);
  return { bm, bn, tpr, threads: bm * tpr, d4, vecsPerLane: d4 / tpr, sharedBytes: bytes(bm, bn) };
}
