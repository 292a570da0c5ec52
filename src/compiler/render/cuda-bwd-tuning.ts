// The CUDA backward's variants under evaluation (render/cuda-bwd.ts): what each one changes, and how a set of them
// is named on the command line (--cuda-bwd), in the environment (ATTNC_CUDA_BWD) and in a manifest (abi.tuning).

/**
 * Variants of the backward kernels under evaluation, each off by default: the defaults are the kernels that ran
 * against float64 on a GPU. A variant becomes the default once it has passed scripts/gpu-verify.sh and won the
 * training-step A/B (bench/train.py --variants).
 */
export interface CudaBackwardTuning {
  /**
   * The forward kernel's element code (SpecCode.elem): per-row values in registers, per-key and per-diagonal
   * values from shared tables filled per tile, head values once per tile; g of an affine logit read as a2 ln 2.
   * Default: each element evaluates the logit, g and the mask from the IR in full (nvcc hoists what it can).
   */
  tables?: boolean;
  /**
   * The dK/dV launch copies a query tile's LSE and delta with cp.async beside its Q and dO, and converts the LSE
   * where it is read. Default: plain loads, whose latency the block waits out once per query tile.
   */
  asyncStats?: boolean;
  /**
   * For masks whose tile test scans tables (documents): the dK/dV launch classifies its items (query head, query
   * tile) a window of 128 at a time, one item per thread with its own scans, so that their latencies overlap, as
   * the forward and dQ kernels classify KV tiles (cuda-spec.ts tileWindow); the block's key range is scanned once.
   * Default: one warp-cooperative test per item in turn, each a dependent round trip to global memory.
   */
  scanWindow?: boolean;
  /**
   * Hopper's warpgroup tensor cores for the products of both launches (cuda-bwd-wgmma.ts: wgmma with the forward's
   * swizzled tiles; sm_90a only, head dims 64 and 128, elsewhere ignored). Default: mma.sync, any arch from sm_80.
   */
  wgmma?: boolean;
  /**
   * FlashAttention-2's single pass: the dK/dV launch also adds each item's dQ = dS K (dS through shared memory, on
   * mma.sync) into an f32 scratch with atomic adds, so S and dP are computed once, not in both launches (5 products
   * where there were 7); a small launch before it writes delta and zeroes the scratch, one after it rounds dQ.
   * Default: a dQ launch of its own that recomputes S and dP (no atomics, deterministic).
   */
  fusedDq?: boolean;
}

const TUNING_NAMES: Record<string, keyof CudaBackwardTuning> = { tables: 'tables', 'async-stats': 'asyncStats', 'scan-window': 'scanWindow', wgmma: 'wgmma', 'fused-dq': 'fusedDq' };
export const BACKWARD_TUNING_SYNTAX = `a comma list of ${Object.keys(TUNING_NAMES).join(', ')} (or 'default')`;

/** A --cuda-bwd / ATTNC_CUDA_BWD list as tuning, or a one-line reason it does not parse. */
export function parseBackwardTuning(s: string): CudaBackwardTuning | string {
  const out: CudaBackwardTuning = {};
  for (const word of s.split(',').map((w) => w.trim()).filter(Boolean)) {
    if (word === 'default') continue;
    const key = TUNING_NAMES[word];
    if (!key) return `unknown backward variant '${word}': expected ${BACKWARD_TUNING_SYNTAX}`;
    out[key] = true;
  }
  return out;
}

/** The variant list of a tuning, as parseBackwardTuning reads it ('' for the defaults). */
export function backwardTuningLabel(t: CudaBackwardTuning | undefined): string {
  return Object.entries(TUNING_NAMES).filter(([, key]) => t?.[key]).map(([name]) => name).join(',');
}
