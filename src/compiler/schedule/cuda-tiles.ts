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
  /**
   * Warp-specialized wgmma kernel only: tile k+1's S = Q K^T is issued with tile k's O += P V and its
   * softmax runs while that product is on the tensor cores (FlashAttention-3's intra-warpgroup overlap).
   */
  overlap: boolean;
  /**
   * Blocks per SM the kernel is built for (__launch_bounds__' second argument): with 2, each block gets half
   * the register file and (less 1 KiB) half of the 228 KiB of shared memory, and one block's prologue and
   * epilogue overlap the other's loop, which pays off where rows are short.
   */
  ctas: number;
  /**
   * Warp-specialized wgmma kernel only: the kernel walks the work items (query block, head, batch) with a
   * grid stride, so a loader may launch one block per SM slot (abi.persistent) and the producer stages the
   * next item's Q and first K/V tiles while the consumers finish the current one. Q is double-buffered,
   * each buffer large enough for the O staging of the epilogue (which otherwise runs over K's first stage).
   */
  persistent: boolean;
  /**
   * Producer warpgroup only: 16-byte loads each producer thread keeps in flight when its tile test scans a table
   * over a tile's keys (one tile per thread, a window of 128 tiles at once); 0 where there is no producer.
   */
  scanBatch: number;
  /**
   * Persistent kernel only: odd rounds of the item walk run in reverse (block b takes item rG + G - 1 - b).
   * A model of the static schedule (`python3 bench/schedule-model.py`) puts causal's busiest SM at 1.001 of the
   * mean load instead of 1.031 at B2 N16384 and B8 N4096 (document's ids: 1.076 / 1.105 at N16384, but 1.088 /
   * 1.031 at N4096). On by default for a persistent kernel: on the H200 at D=64, B2 N16384, causal 2.843 -> 2.746 ms,
   * alibi 3.379 -> 3.184, softcap 5.819 -> 5.687, scale_invariant 3.538 -> 3.444; N1024 unchanged
   * (tests/cuda/results/h200-2026-12-04-fma-exp2-snake-sweep.txt).
   */
  snakeOrder: boolean;
  /**
   * Warp-specialized wgmma kernel only, the softmax's instruction diet (cuda-mma.ts, SoftmaxOptions):
   * foldScale keeps raw dot products in S and folds the logit's scale into the exp2's FMA (only where the spec
   * allows it: TileHints.foldedScale); lazyRescale moves a row's reference max only by more than 2^8;
   * twoChains splits the row max and sum into two dependency chains.
   */
  foldScale: boolean;
  lazyRescale: boolean;
  twoChains: boolean;
  /**
   * Warp-specialized wgmma kernel only: each row's sum of P is taken by the tensor cores with P V (P times a
   * 16 x 8 tile of ones, one m64n8k16 per k16 step, into an accumulator beside O's) instead of one FADD per
   * element in the softmax; the sum is of the rounded P that P V uses.
   */
  rowSumMma: boolean;
  /**
   * Warp-specialized wgmma kernel only, where the logit does not fold into the exp2: a row's reference max starts
   * at 0 when its first tile allows (cuda-mma.ts SoftmaxOptions.zeroRef, zeroRefWindow), so P = 2^x without a
   * subtraction per element while the warp's logits stay in the window; null where off.
   */
  zeroRef: { low: number; high: number } | null;
  /**
   * Overlapped loop only: the consumers wait for tile k's P V and hand its stage back right after tile k + 1's
   * logits, before its softmax, instead of after the softmax. The producer gets the stage back sooner; the
   * softmax no longer overlaps P V.
   */
  earlyPvWait: boolean;
  /**
   * Overlapped loop with the early P V wait and the zero reference only: O is rescaled inside the softmax's general
   * path, per row slot, instead of by every thread after it (O *= alpha, D / 2 + 4 multiplies a row slot a tile, with
   * alpha = 1 on the zero reference's path). P V is done by then, so O may change there.
   */
  rescaleInSoftmax: boolean;
  /**
   * With rescaleInSoftmax and the row sums on the tensor cores: the zero reference's path takes P = 2^x of every
   * logit straight into P V's A fragments and checks the largest packed P against 2^high (max.bf16x2 / .f16x2, two
   * values an instruction) instead of each logit's max before (one FMNMX an element). A warp whose check fails runs
   * the general path on its logits, which are still in S. On wherever it can run.
   */
  packedRefCheck: boolean;
  /**
   * Overlapped loop with two consumer warpgroups only: FlashAttention-3's pingpong. The warpgroups take turns
   * issuing their S and P V (named barriers 3 and 4), so one's softmax runs while the other's products are on
   * the tensor cores. On by default except beside per-diagonal tables, banded masks and table-scanning tile
   * tests, where it lost (the measurements are beside the rule in wgmmaTiles).
   */
  pingpong: boolean;
  /**
   * Producer warpgroup only, beside per-diagonal tables: diagonal x of tile j is diagonal x + BN of tile j + 1, so
   * producer thread t (t < BN) owns the table entries x = t (mod BN) and keeps their values in registers; after an
   * item's first live tile, each tile that directly follows the one filled before it costs every such thread one
   * new diagonal (the tiles' BM + BN - 1 in all) instead of ceil((BM + BN - 1) / BN) of them.
   */
  diagCarry: boolean;
  /**
   * Warp-specialized wgmma kernel only, beside per-diagonal tables: each consumer thread reads its elements'
   * per-diagonal values of a tile (2 * (BN / 8 + 1) of them per value) into registers right after it issues the
   * tile's S = Q K^T, so that the loads' latency hides behind the tensor cores instead of stalling the element
   * loop's FMAs (Nsight Compute: short-scoreboard stalls on them were the most of scale_invariant's extra time at D=64).
   */
  diagPrefetch: boolean;
}

/**
 * The zero reference's window (log2 units) per storage type. bf16 keeps the f32 exponent range: a reference of 0
 * for row maxima in [-32, 32] leaves P in [2^-32, 2^32] at the top, every weight within 2^-94 of the largest still
 * normal, and O's f32 sums far from overflow for any |V| below 2^70. f16's P must stay below 65504 and its largest
 * weight at 1 or above (below, the small weights turn subnormal and lose digits): [0, 8], as a lazy reference.
 */
export function zeroRefWindow(dtype: StorageDType): { low: number; high: number } {
  return dtype === 'bf16' ? { low: 32, high: 32 } : { low: 0, high: 8 };
}

export interface TileOverrides { warps?: number; bn?: number; mt?: number; producer?: boolean; stages?: number; overlap?: boolean; ctas?: number; persistent?: boolean; scanBatch?: number; snakeOrder?: boolean; foldScale?: boolean; lazyRescale?: boolean; twoChains?: boolean; rowSumMma?: boolean; zeroRef?: boolean; earlyPvWait?: boolean; rescaleInSoftmax?: boolean; packedRefCheck?: boolean; pingpong?: boolean; diagCarry?: boolean; diagPrefetch?: boolean }

/** What the schedule needs to know about the spec. */
export interface TileHints {
  /** The tile-live test reads tables over each tile's keys (per-thread scans at run time, e.g. document ids). */
  tableTileTest?: boolean;
  /** The element loop reads per-diagonal tables (scale_invariant's a_t and m_t). */
  diagTables?: boolean;
  /** How many per-diagonal values an element reads (2 for scale_invariant); 1 where unsaid. */
  diagValues?: number;
  /** Static shared memory of the spec's tables for a tiling (they sit next to the dynamic K/V stages). */
  tableBytes?: (bm: number, bn: number, stages: number) => number;
  /** The logit's scale can fold into the exp2 (SpecCode.foldedScale: block-uniform a > 0 and c). */
  foldedScale?: boolean;
  /** The mask leaves keys far below the diagonal dead (a sliding window): each row's loop is a few tiles. */
  bandedMask?: boolean;
  /** The logit is a * dot + c (SpecCode.affine); otherwise a general expression is evaluated per element (softcap's tanh). */
  affineLogit?: boolean;
}

/** The fields only the warp-specialized wgmma kernel uses, as the other kernels have them. */
const NO_WGMMA_EXTRAS = { producerRegs: 0, consumerRegs: 0, overlap: false, ctas: 1, persistent: false, scanBatch: 0, snakeOrder: false, foldScale: false, lazyRescale: false, twoChains: false, rowSumMma: false, zeroRef: null, earlyPvWait: false, rescaleInSoftmax: false, packedRefCheck: false, pingpong: false, diagCarry: false, diagPrefetch: false } as const;

/** Why the CUDA kernels cannot take a head dim (null when they can): every kernel steps through D in k16 slices. */
export function cudaHeadDimProblem(dtype: StorageDType, headDim: number): string | null {
  return headDim % 16 === 0 && headDim >= 16 && headDim <= 256 ? null : `cuda ${dtype}: head_dim ${headDim} must be a multiple of 16 from 16 to 256`;
}

export function chooseCudaTiles(dtype: StorageDType, headDim: number, overrides: TileOverrides = {}, arch: 'sm_80' | 'sm_90a' = 'sm_80', hints: TileHints = {}): CudaTiles {
  if (arch === 'sm_90a' && dtype !== 'f32' && (headDim === 64 || headDim === 128)) return wgmmaTiles(dtype, headDim, overrides, hints);
  if (dtype === 'f32') {
    const problem = cudaHeadDimProblem(dtype, headDim);
    if (problem) throw new Error(problem);
    const bm = 32, bn = 32, stages = 2, stride = headDim + 4;
    const smemBytes = 4 * (bm * stride + 2 * stages * bn * stride + bm * (bn + 1));
    return { kind: 'simt', bm, bn, warps: 4, mt: 1, threads: 128, stages, stride, smemBytes, ...NO_WGMMA_EXTRAS };
  }
  const problem = cudaHeadDimProblem(dtype, headDim);
  if (problem) throw new Error(problem);
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
  return { kind: 'mma', bm, bn, warps, mt, threads: 32 * warps, stages, stride, smemBytes, ...NO_WGMMA_EXTRAS };
}

/**
 * Hopper (sm_90a) warpgroup-MMA path: warpgroups of 64 query rows (default 2:
 * BM = 128), BN keys per tile; Q, K and V live in shared memory as
 * 128-byte-swizzled atoms (1 KiB of slack to align them), plus an O staging
 * area of BM rows of STRIDE elements that reuses Q's space at the end.
 * Head dims that are not a multiple of 64 keep the mma.sync kernel.
 *
 * Default: a producer warpgroup (render/cuda-wgmma-ws.ts: 384 threads) and,
 * where a third K/V stage fits next to the spec's tables, 3 stages with the
 * softmax of tile k+1 overlapped with tile k's P V (at D=128, scale_invariant's
 * diagonal tables get there with BN 96); otherwise 2 stages, one tile at a time
 * (wider tables).
 *
 * Measured on an H200 (bf16, milliseconds; `npx tsx scripts/cuda-bench.ts --variants ...`, suffix p =
 * producer, p3 = 3 stages, o = overlap; tests/cuda/results/h200-2026-12-02-overlap-sweep.txt):
 *   D=64  B2 N16384  causal 8x192p3 3.029, 8x128p3o 2.743, 8x160p3o 2.685;  softcap 6.627 / 5.840 / 5.766
 *                    scale_invariant 3.552 / 3.751 / 3.455;  document 1.628 / 1.469 / 1.526
 *         B8 N4096   causal 0.907 / 0.808 / 0.825;  sliding_window 0.574 / 0.488 / 0.543;  scale_invariant 1.059 / 1.065 / 1.028
 *         B32 N1024  causal 0.361 / 0.308 / 0.335;  scale_invariant 0.414 / 0.368 / 0.393
 *   D=128 B2 N16384  causal 8x128 4.854, 8x128p3o 4.453;  softcap 7.959 / 7.204;  alibi 5.090 / 4.969
 *                    scale_invariant 8x128 5.431, 8x128p 5.212 (first run), 8x96p3o 5.995; 3 stages at BN 128 do not fit
 *                    document 8x128 2.186, 8x128p 2.045 (first run), 8x128p3o 2.071;  8x128po (2 stages) 25% slower than 8x128
 * Two blocks per SM (override ctas: 2, suffix @2; tests/cuda/results/h200-2026-12-02-ctas-sweep.txt) do not pay:
 *   D=64 B32 N1024 causal 8x128p3o 0.307, 4x128p3o@2 0.311; sliding_window 0.316 / 0.317; B2 N16384 causal
 *   2.726 / 3.394. Short documents want small tiles and a fast tile scan instead: B32 N1024 document 0.413 /
 *   4x64p3o@2 0.314 / 4x64 (no producer, every thread scans) 0.247.
 * Per-diagonal tables at D=128 (h200-2026-12-02-paired-diag-sweep.txt): scale_invariant 8x128p / 8x160p
 *   N16384 5.197 / 5.072, N4096 1.477 / 1.472, N1024 0.516 / 0.546: BN 128 stays.
 * Earlier (2026-11-29, tile-sweep.txt, no producer then): D=128 12 warps BN 64 within noise of 8 warps BN 128; 4 warps
 * BN 128 far slower; at D=64 12 warps BN 128 was ahead (causal 3.295 / 3.374 ms, scale_invariant 3.938 / 4.334).
 * With the producer, 12 warps leave a consumer thread 152 registers (160 where not persistent: a producer of 32):
 * every example builds at BN 96 and 64 without spills (overlapped and persistent at D=64, overlapped at D=128); BN 128
 * overlapped spilled persistent, and not persistent builds for all but softcap and document (nvcc, sm_90a). Not yet
 * timed: scripts/gpu-ab.sh has them (12x128p3o, 12x96p3oP, 12x64p3oP, 12x64p3o).
 */
function wgmmaTiles(dtype: StorageDType, headDim: number, o: TileOverrides, hints: TileHints): CudaTiles {
  const producer = o.producer ?? true;
  const warps = o.warps ?? 8;
  // Per-diagonal values carried in the producer's registers (CudaTiles.diagCarry): by default at D=128 (why: beside diagCarry below).
  const carryAsked = o.diagCarry ?? headDim >= 128;
  const ctas = o.ctas ?? 1;
  if (ctas !== 1 && ctas !== 2) throw new Error(`cuda sm_90a: ${ctas} blocks per SM: 1 or 2`);
  if (o.persistent && !producer) throw new Error('cuda sm_90a: a persistent kernel needs the producer warpgroup (it runs ahead into the next work item)');
  const smemLimit = ctas === 1 ? SMEM_LIMIT : SMEM_PER_SM / 2 - 1024;
  if (![4, 8, 12].includes(warps)) throw new Error(`cuda sm_90a: ${warps} warps: must be 4, 8 or 12 (whole warpgroups)`);
  const bm = 16 * warps, stride = headDim + 8;
  // BN 128, but 96 at D=128 for per-diagonal tables: 3 stages of BN 128 (and Q) leave no room for three tables,
  // and at BN 96 they fit with the overlap. Measured on the H200 (bf16 scale_invariant, TFLOP/s at B2 N16384 / B8 N4096,
  // one run; tests/cuda/results/h200-2026-12-04-rowsum-sweep.txt): 8x128p (2 stages, serial) 485.6 / 420.2,
  // 8x96p3o 489.5 / 436.0, with row sums on the tensor cores 518.1 / 440.9; BN 64 lost (425.4 / 381.2, 451.8 / 407.1
  // with the row sums). At D=64 the tables used to want BN 160 (each tile's fill covers BM + BN - 1 diagonals), but
  // with the row sums on the tensor cores BN 128 is ahead: 341.8 / 310.5 against 339.9 / 300.0 (and 327.7 / 292.6 for
  // BN 160 without them). The overlapped loop holds tile k's P and tile k+1's S at once: at D=64 BN 192 did not fit
  // the consumers' registers (it spilled).
  const bn = o.bn ?? (headDim > 64 && hints.diagTables ? 96 : 128);
  if (bn % 32 !== 0 || bn < 64 || bn > 256) throw new Error(`cuda sm_90a: BN ${bn} must be a multiple of 32 from 64 to 256`);
  // Row sums on the tensor cores (P times ones beside P V) where the logit reads per-diagonal tables: there
  // the FP32 pipe carries the table's FMA and the subtraction of the row max per element besides exp2's
  // feed, and the FADD per element it saves pays for BN/16 more (narrow) wgmmas per tile. Same run, default
  // tiles then with the row sums (TFLOP/s, B2 N16384 / B8 N4096; h200-2026-12-04-rowsum-sweep.txt):
  //   scale_invariant D=64 327.7 / 292.6 -> 339.9 / 300.0;  D=128 at 8x96p3o 489.5 / 436.0 -> 518.1 / 440.9
  //   where the logit folds into exp2 it lost: causal D=64 441.2 / 385.8 -> 408.2 / 364.6, sliding_window
  //   D=64 -4.8% / -3.0%, alibi D=128 543.0 / 470.9 -> 482.5 / 445.8; other specs within 2% at D=64.
  // And where the zero reference's check on the packed P wants them (softcap's logit, below zeroRefWanted).
  const nonAffineBf16 = dtype === 'bf16' && hints.affineLogit === false && !hints.foldedScale;
  const rowSumMma = producer && (o.rowSumMma ?? (!!hints.diagTables || (nonAffineBf16 && o.zeroRef !== false)));
  if (o.rowSumMma && !producer) throw new Error('cuda sm_90a: row sums on the tensor cores are for the kernel with a producer warpgroup');
  const staticBytes = (stages: number) => (hints.tableBytes?.(bm, bn, stages) ?? 0) + STATIC_SLACK;
  // Persistent: two Q buffers of wgmmaQElems elements each (1 KiB multiples: the swizzle atoms behind them stay aligned).
  // (+ the 16 x 8 tile of ones behind V where the tensor cores take the row sums.)
  const dynamicBytes = (stages: number, persistent: boolean) => (persistent
    ? 2 * (2 * wgmmaQElems(bm, headDim, stride) + 2 * stages * bn * headDim) + 1024
    : Math.max(2 * (bm * headDim + 2 * stages * bn * headDim), 2 * bm * stride) + 1024) + (rowSumMma ? WGMMA_ONES_BYTES : 0);
  const fits = (stages: number, persistent: boolean) => dynamicBytes(stages, persistent) + staticBytes(stages) <= smemLimit;
  // The producer keeps 40 registers (copy addresses, tile tests, table fills; 56 when its tile test scans tables,
  // which at 40 spills; 8 or 24 more for a persistent kernel's item loop: 16 spilled 12 bytes in round-robin
  // order once the copy loop kept its row terms), the consumers share the rest in
  // multiples of 8 (setmaxnreg's granularity), at most 240.
  // "The rest" is what the block is given at launch: __launch_bounds__(threads, ctas) caps every thread at
  // 64 K / ctas / threads, rounded down to 8; setmaxnreg only moves registers within that pool, and an
  // increase the pool cannot cover waits forever (8 warps, a producer and 2 blocks per SM: 80 per thread,
  // and 104 for the consumers hung on the H200).
  const consumerThreads = 32 * warps;
  const threads = consumerThreads + (producer ? 128 : 0);
  const plan = (persistent: boolean) => {
    // Three consumer warpgroups: a producer of 32 leaves each consumer thread 160 registers instead of 152, where
    // BN 128 builds without spills (FlashAttention-3's D=64 tiling, 192 x 128); the persistent item loop needs more,
    // and so do carried per-diagonal values (at 32 they spilled 8-16 bytes, tests/cuda/results/ptxas-2026-12-04-*).
    const base = hints.tableTileTest ? 56 : warps === 12 && !persistent && !(carryAsked && !!hints.diagTables) ? 32 : 40;
    const producerRegs = producer ? base + (persistent ? (hints.tableTileTest ? 24 : 8) : 0) : 0;
    const consumerRegs = producer ? Math.min(240, Math.floor((launchRegs(threads, ctas) * threads - 128 * producerRegs) / consumerThreads / 8) * 8) : 0;
    // The overlap needs a third stage (the consumers hold two at once; with two, the producer cannot run
    // ahead: measured 25% slower), which at D=128 fits only next to small tables, and at D=128 the
    // consumers' 232 registers (224, with a table-scanning producer, spills). Two stagings that let 2 stages
    // overlap (K and V in rings of their own; a tile's K beside the previous tile's V) lost at N >= 4096 but for
    // four rows within 1%, their producer issuing more per tile; scale_invariant D=128 N16384 4.6 -> 5.4-5.7 ms against its serial loop
    // (tests/cuda/results/h200-2026-12-04-kv-rings-sweep.txt).
    const overlapFits = producer && fits(3, persistent) && (headDim <= 64 || consumerRegs >= 232);
    return { producerRegs, consumerRegs, overlapFits, stages: o.stages ?? (overlapFits ? 3 : 2) };
  };
  // Persistent by default where the kernel keeps its 3 stages and overlap (D=64): the producer loads the next
  // item's Q, classifies its tiles and loads its first K/V while the consumers finish the current item, and
  // items go heaviest first (render/cuda-wgmma-ws.ts), so the static round robin ends evenly.
  // Measured on an H200 (bf16 D=64, milliseconds, 8x128p3o / 8x128p3oP, BN 160 for scale_invariant;
  // tests/cuda/results/h200-2026-12-04-persistent-lpt-sweep.txt, document: -scan-sweep.txt, bench's ids):
  //                     B32 N1024        B8 N4096         B2 N16384
  //   causal            0.313 / 0.279    0.824 / 0.807    2.740 / 2.861 (the one loss)
  //   alibi             0.363 / 0.318    0.992 / 0.914    3.337 / 3.251
  //   softcap           0.555 / 0.507    1.653 / 1.577    5.840 / 5.777
  //   scale_invariant   0.398 / 0.345    1.048 / 0.977    3.564 / 3.538
  //   sliding_window    0.328 / 0.287    0.481 / 0.449    0.509 / 0.485
  //   document                           0.543 / 0.455    1.121 / 1.090  (its short-row kernel runs up to 8192)
  // With items in (head, query block) order instead, a causal mask's rows of 1 to 128 tiles ended unevenly
  // and the persistent kernel lost at N1024 even for windows (h200-2026-12-04-persistent-sweep.txt).
  // At D=128 (2 stages next to per-diagonal tables; 3 leave no room for a second Q buffer) it lost:
  // scale_invariant N16384 5.234 / 5.958, causal 4.668 / 4.920 (h200-2026-12-04-persistent-d128.txt), and with
  // scale_invariant's 3 stages at BN 96 too: 8x96p3o 489.5 / 436.0 TFLOP/s, 8x96p3oP 430.4 / 412.1 (-rowsum-sweep.txt).
  const plain = plan(false), walking = plan(true);
  const persistent = producer && (o.persistent ?? (headDim <= 64 && o.overlap !== false && plain.stages === 3 && plain.overlapFits
    && walking.stages === 3 && walking.overlapFits));
  const { producerRegs, consumerRegs, overlapFits, stages } = persistent ? walking : plain;
  if (stages !== 2 && !(producer && stages === 3)) throw new Error(`cuda sm_90a: ${stages} stages: 2, or 3 with a producer warpgroup`);
  const overlap = producer && stages === 3 && (o.overlap ?? overlapFits);
  const smemBytes = dynamicBytes(stages, persistent);
  if (smemBytes + staticBytes(stages) > smemLimit) throw new Error(`cuda sm_90a: ${smemBytes} bytes of shared memory (and the tables) for BM ${bm}, BN ${bn}, ${stages} stages: more than ${smemLimit / 1024} KiB${ctas > 1 ? ` (${ctas} blocks per SM)` : ''}`);
  const scanBatch = producer ? (o.scanBatch ?? 2) : 0;
  if (producer && !(scanBatch >= 1 && scanBatch <= 16)) throw new Error(`cuda sm_90a: ${scanBatch} table-scan loads in flight: 1 to 16`);
  if (o.snakeOrder && !persistent) throw new Error('cuda sm_90a: the snake item order is for a persistent kernel');
  const snakeOrder = o.snakeOrder ?? persistent;
  // The softmax's instruction diet, each piece where a same-run A/B on the H200 said it pays (bf16, B2 N16384, ms;
  // tests/cuda/results/h200-2026-12-04-softmax-diet-sweep.txt):
  //   fold:        raw dot products in S, the scale in the exp2's FMA. Causal D=64 2.764 -> 2.596 (fold alone;
  //                the two figures from two runs of the file),
  //                sliding_window D=128 0.740 -> 0.725 (beside lazy rescale and two chains); but document lost with it (D=64
  //                1.109 -> 1.135, D=128 N4096 0.671 -> 0.719), so not where a table-scanning producer runs.
  //   lazy:        pays at D=128, where O's rescale is 64 multiplies a row slot: causal 4.552 -> 4.333, alibi
  //                5.117 -> 4.962, softcap 7.500 -> 7.348; at D=64 it lost (alibi 3.192 -> 3.328, causal
  //                2.596 -> 2.643), its vote and branch costing more than 32 multiplies.
  //   two chains:  lost at D=128 (causal 4.333 -> 4.164 without) and for causal at D=64 (2.596 with one chain,
  //                2.679 with two); won a little at D=64 where the logit does not fold (scale_invariant 3.455 ->
  //                3.377 across two runs, alibi 3.192 -> 3.167, softcap 5.694 -> 5.654).
  const foldScale = (o.foldScale ?? !hints.tableTileTest) && !!hints.foldedScale;
  const lazyRescale = o.lazyRescale ?? headDim >= 128;
  // With the row sums on the tensor cores only the max is left to split, and one chain was ahead there:
  // scale_invariant D=64 341.5 / 309.4 -> 346.6 / 312.2 TFLOP/s without two chains; at D=128 two chains
  // lost (510.3 / 439.9 -> 481.1 / 435.8) and so did turning lazy rescale off (495.8 / 439.2)
  // (B2 N16384 / B8 N4096, tests/cuda/results/h200-2026-12-04-rowsum-sweep.txt, run 3).
  // The zero reference (never beside the fold, whose FMA takes the reference off for free) and the early wait for
  // P V, each where a same-run A/B on the H200 said it pays (bf16 unless said, TFLOP/s at B2 N16384 / B8 N4096;
  // tests/cuda/results/h200-2026-12-04-zero-ref-sweep.txt; z: zero reference, w: early wait):
  //                        neither        z              w              z + w
  //   scale_invariant D128 493.7 / 440.1  522.2 / 456.1  521.7 / 442.1  563.3 / 466.8
  //     f16                479.2 / 442.0  448.6 / 406.5  518.9 / 440.2  480.5 / 410.9  (f16's window [0, 8] seldom holds)
  //   alibi D128           517.8 / 472.6  481.4 / 429.2  536.2 / 471.7  474.3 / 430.6
  //   alibi D64            347.4 / 313.1  316.7 / 287.7  361.8 / 321.7  314.4 / 288.7
  //   softcap D128         344.1 / 306.6  333.5 / 294.6  347.1 / 306.3  333.8 / 294.2
  //   scale_invariant D64  347.6 / 315.4  329.5 / 301.1  339.9 / 309.6  339.1 / 307.2
  //   causal (folded)      D128 639.3 / 541.4 without w, 626.4 / 540.2 with; D64 440.9 / 384.2, 430.9 / 372.9
  // Where the zero reference's window seldom holds, its vote and branch cost more than they save: ptxas then
  // keeps the softmax behind the branch instead of moving it below the P V wait, as it does in plain code.
  // At D=64 the zero reference pays in the 12-warp long-row kernel beside per-diagonal tables, with the early P V
  // wait and two chains for its vote's row max. Same run on the H100 (bf16 scale_invariant 12x96p3oP, SM cycles a
  // launch at B2 N16384 / B8 N4096; tests/cuda/results/h100-2026-12-06-forward-zero-ref-d64.txt):
  //   12x96p3oP 5.590 M / 1.649 M;  +z 5.592 / 1.705;  +w 5.613 / 1.646;  +zw 5.201 / 1.562 and 5.196 / 1.567;
  //   +zwt 5.082 / 1.545;  +zwc 5.195 / 1.536  (causal's default: 4.324 / 1.348, so scale_invariant / causal
  //   0.77 / 0.82 -> 0.85 / 0.87).
  // Neither alone pays: with the early wait the softmax runs after P V, and without the subtraction per element
  // and the row max's shuffles there is little left for it to hide behind. Then O's rescale inside the softmax
  // (rescaleInSoftmax) and the check on the packed P (packedRefCheck), same run (h100-2026-12-06-forward-packed-check.txt):
  //   12x96p3oP: -z 5.590 / 1.644, +zwt 5.087 / 1.536, +zwtr 4.904 / 1.503, +zwtrk 4.818 / 1.479 (causal 4.341 / 1.346:
  //   scale_invariant / causal 0.90 / 0.91); D=128's default (z and w already) -r 7.272 / 2.237, 7.190 / 2.206,
  //   +k 7.035 / 2.145 (causal 6.745 / 2.003: 0.96 / 0.93). The 8-warp kernel at B32 N1024 / B8 N4096: 8x128p3oP
  //   0.621 / 1.757 M, +zwtk 0.613 / 1.716 (within the noise at N1024, where the same kernel timed 0.632 as default).
  // And where the logit is no affine function of the dot (softcap's tanh per element), with the row sums on the tensor
  // cores, bf16, same run on the H100 (h100-2026-12-06-forward-zero-ref-softcap.txt; SM cycles, B2 N16384 / B8 N4096):
  //   softcap D=64 12x96p3oP 10.718 / 3.015 M, +zwmk 9.708 / 2.777;  D=128 default 12.595 / 3.556, +zwmk 12.161 / 3.455
  //   alibi (affine) D=64 5.267 / 1.579 -> 6.256 / 1.776, D=128 7.917 / 2.314 -> 8.000 / 2.282: not there.
  const zeroRefWanted = producer && !foldScale && o.zeroRef !== false && ((dtype === 'bf16' && !!hints.diagTables) || nonAffineBf16);
  const zeroRefAtD64 = headDim <= 64 && zeroRefWanted;
  const twoChains = o.twoChains ?? (headDim <= 64 && !foldScale && (!rowSumMma || zeroRefAtD64));
  if (o.zeroRef && (foldScale || !producer)) throw new Error('cuda sm_90a: the zero reference is for a kernel with a producer warpgroup whose logit does not fold into the exp2');
  const zeroRef = producer && !foldScale && (o.zeroRef ?? zeroRefWanted) ? zeroRefWindow(dtype) : null;
  if (o.earlyPvWait && !overlap) throw new Error('cuda sm_90a: waiting for P V before the softmax is for the overlapped loop');
  const earlyPvWait = overlap && (o.earlyPvWait ?? (!foldScale && (zeroRefAtD64 || !(headDim <= 64 && (!!hints.diagTables || !!hints.tableTileTest)))));
  if (o.rescaleInSoftmax && !(earlyPvWait && zeroRef)) throw new Error('cuda sm_90a: rescaling O inside the softmax is for the early P V wait beside the zero reference');
  const rescaleInSoftmax = earlyPvWait && zeroRef !== null && (o.rescaleInSoftmax ?? true);
  // The packed check wherever it can run (the measurements above zeroRefAtD64).
  const packedRefCheckFits = rescaleInSoftmax && rowSumMma;
  if (o.packedRefCheck && !packedRefCheckFits) throw new Error('cuda sm_90a: checking the zero reference on the packed P needs O rescaled inside the softmax and the row sums on the tensor cores');
  const packedRefCheck = packedRefCheckFits && (o.packedRefCheck ?? true);
  if (o.pingpong && !(overlap && warps === 8)) throw new Error('cuda sm_90a: pingpong is for the overlapped loop of two consumer warpgroups (8 warps)');
  // FlashAttention-3's pingpong (the consumer warpgroups taking turns at the tensor cores through named barriers
  // 3 and 4), where a same-run A/B on the H200 said it pays: bf16, ms at B2 N16384 / B8 N4096, min of 50 launches
  // over three interleaved runs (tests/cuda/results/h200-2026-12-04-pingpong-sweep.txt):
  //   causal D64  2.459 / 0.696 -> 2.392 / 0.684    softcap D64 5.551 / 1.502 -> 5.433 / 1.472
  //   causal D128 3.383 / 1.002 -> 3.369 / 0.986    alibi D64   3.032 / 0.848 -> 2.997 / 0.827
  //   alibi and softcap D128: within 0.5% either way
  //   scale_invariant D64 3.130 / 0.862 -> 3.264 / 0.880, D128 3.872 / 1.156 -> 3.920 / 1.161: lost, so not
  //   beside per-diagonal tables, whose loads the turns hold back.
  //   sliding_window D64 0.426 / 0.394 -> 0.436 / 0.394, document D64 0.815 / 0.316 -> 0.826 / 0.318 (two runs
  //   each): lost where rows are a few tiles long, so not for banded masks nor table-scanning tile tests.
  // The minimum, because that session's medians were bimodal (a fast and a slow mode ~12% apart: the SM clock stepping
  // down from 1980 MHz under load, found later with the clock probe, tests/cuda/results/h200-2026-12-04-clock-probe.txt). An earlier form of the pingpong lost for causal: D=128 4.287 -> 4.533, D=64 2.699 -> 2.743.
  const pingpong = o.pingpong ?? (overlap && warps === 8 && !hints.diagTables && !hints.tableTileTest && !hints.bandedMask);
  // Per-diagonal values carried from tile to tile in the producer's registers (CudaTiles.diagCarry): one thread per
  // diagonal of a tile's width, so BN must not exceed the producer's 128 threads.
  if (o.diagCarry && bn > 128) throw new Error('cuda sm_90a: carrying per-diagonal values needs BN <= 128 (one producer thread per diagonal)');
  // Prefetched per-diagonal values take 2 * (BN / 8 + 1) registers each, on top of the accumulators a consumer thread
  // holds while they are live: S (BN / 2), O (D / 2) and, overlapped, the previous tile's P (BN / 4). ptxas (sm_90a,
  // scale_invariant, bf16) put the edge at 28 registers short of the consumers' budget: 8 warps at D=64 (224) built
  // without spills at BN 128 (68 + 128 = 196) and spilled at BN 160 (84 + 152 = 236); 12 warps (152) built at BN 64
  // (36 + 80 = 116) and spilled at BN 96 (52 + 104 = 156); D=128 at BN 96 (232) built (52 + 136 = 188).
  const prefetchRegs = (hints.diagValues ?? 1) * 2 * (bn / 8 + 1);
  const prefetchLive = prefetchRegs + bn / 2 + headDim / 2 + (overlap ? bn / 4 : 0);
  if (o.diagPrefetch && producer && prefetchLive > consumerRegs - 28) {
    throw new Error(`cuda sm_90a: reading per-diagonal values early takes ${prefetchRegs} registers a consumer thread; with S, P and O that is ${prefetchLive} of its ${consumerRegs} (more than ${consumerRegs - 28} spill)`);
  }
  // Both on by default at D=128, off at D=64, as a same-run A/B on the H200 said (bf16 scale_invariant, SM cycles per
  // launch against the kernel without them, the mean of two runs in opposite orders; scripts/gpu-ab.sh,
  // tests/cuda/results/h200-2026-12-05-gpu-ab-bench.txt): D=128 with both (+cd) 0.939 at B2 N16384 and 0.957 at
  // B8 N4096 (each alone 0.99-1.00: the early reads pay once the producer's fill is cheap); D=64 at 8 warps +c
  // 0.985 / 1.000, +d 1.042 / 1.040, +cd 1.037 / 1.043, and at 12 warps BN 96 +c 1.066 / 1.011 against 12x96 alone.
  const diagCarry = producer && !!hints.diagTables && bn <= 128 && carryAsked;
  const diagPrefetch = producer && !!hints.diagTables && (o.diagPrefetch ?? (headDim >= 128 && prefetchLive <= consumerRegs - 28));
  return { kind: 'wgmma', bm, bn, warps, mt: 1, threads, stages, stride, smemBytes, producerRegs, consumerRegs, overlap, ctas, persistent, scanBatch, snakeOrder, foldScale, lazyRescale, twoChains, rowSumMma, zeroRef, earlyPvWait, rescaleInSoftmax, packedRefCheck, pingpong, diagCarry, diagPrefetch };
}

/**
 * Short rows. Where the tile test reads tables (document ids), how many keys a row keeps is data: packed
 * documents of a few hundred tokens leave each 128-row block two or three live tiles, and one block per SM
 * then spends most of its time starting and finishing. At D=128 the source carries a second kernel of
 * 64-row blocks and 64-key tiles, a producer and 2 blocks per SM, which the loader launches up to maxNk =
 * 4096 keys (manifest abi.variants), where the two cross.
 * At D=64 the main kernel is persistent (its producer classifies the next item's tiles while the consumers
 * finish the current one) and, since the eager partial-tile mask and the producer's row copy loop, it beats
 * the 64-row kernel at every length measured, so D=64 carries none.
 * Measured on an H200 (bf16, document ids of lengths N/16..N/4 as bench/run.py draws them, milliseconds):
 *   D=64   default main / short, 2026-12-04 (3766f0e; h200-2026-12-04-short-rows-crossover-d64.txt, one process):
 *          N1024 0.231 / 0.240   N2048 0.277 / 0.311   N4096 0.336 / 0.395   N8192 0.522 / 0.716
 *   D=128  8x128p / 4x64p@2, 2026-12-02 (h200-2026-12-02-ctas-sweep.txt, -short-rows-crossover.txt):
 *          N1024 0.493 / 0.380   N4096 0.669 / 0.573   N8192 0.981 / 0.986   N16384 1.541 / 1.812
 *          and 2026-12-04 (3766f0e): N4096 0.510 / 0.463
 * For causal, sliding-window and scale_invariant masks the same kernel gains nothing (D=64 N1024 causal
 * 0.307 / 0.311) or loses, so they get none.
 */
export function shortRowTiles(dtype: StorageDType, headDim: number, arch: 'sm_80' | 'sm_90a', hints: TileHints, overrides: TileOverrides = {}): { tiles: CudaTiles; maxNk: number } | null {
  if (arch !== 'sm_90a' || dtype === 'f32' || headDim !== 128 || !hints.tableTileTest) return null;
  return { tiles: wgmmaTiles(dtype, 128, { ...overrides, warps: 4, bn: 64, ctas: 2 }, hints), maxNk: 4096 };
}

/**
 * Long rows. At D=64 a third consumer warpgroup (12 warps: BM 192, BN 96, persistent) hides more of the element
 * loop's waits, but a block of 192 rows pads Nq further: at N1024 a causal mask costs 31% more tile work than with
 * 128-row blocks, and a decode call (Nq = 1) computes 191 dead rows instead of 127. So the source carries it as a
 * variant the loader launches from minNq query rows on (manifest abi.variants), and keeps the 8-warp kernel as the
 * main one. Measured on an H200 (bf16, SM cycles per launch, 12x96p3oP over the 8-warp default, the mean of two
 * runs in opposite orders; tests/cuda/results/h200-2026-12-05-gpu-ab-bench.txt, -long-rows-crossover.txt):
 *                     B32 N1024  B16 N2048  B8 N4096  B4 N8192  B2 N16384
 *   causal            1.049      0.948      0.946     0.906     0.900
 *   alibi             1.101      0.955      0.939     0.891     0.881
 *   scale_invariant   1.083      0.960      0.945     0.892     0.887
 *   softcap           1.153      1.017      1.013     0.972     0.964
 *   decode (Nq = 1, B8 H32/8 Nk8192): causal 0.162 -> 0.225 ms, scale_invariant 0.213 -> 0.282
 * Softcap's logit (a tanh per element) keeps the FP pipes busy whatever the warps, so it takes the variant from
 * 8192 rows, the affine logits from 2048. Not for banded masks or table-scanning tile tests (sliding_window,
 * document): their rows are a few tiles long, where 8 warps' smaller blocks balance better (not timed at 12 warps).
 */
export function longRowTiles(dtype: StorageDType, headDim: number, arch: 'sm_80' | 'sm_90a', hints: TileHints, overrides: TileOverrides = {}): { tiles: CudaTiles; minNq: number } | null {
  if (arch !== 'sm_90a' || dtype === 'f32' || headDim !== 64 || hints.tableTileTest || hints.bandedMask) return null;
  return { tiles: wgmmaTiles(dtype, 64, { ...overrides, warps: 12, bn: 96, persistent: true }, hints), minNq: hints.affineLogit ? 2048 : 8192 };
}

/** Elements of one Q buffer of the persistent kernel: BM rows of Q or of the O staging (STRIDE apart), rounded up to 1 KiB. */
export function wgmmaQElems(bm: number, headDim: number, stride: number): number {
  return Math.ceil(Math.max(bm * headDim, bm * stride) / 512) * 512;
}

/** Registers per thread a block of `threads` starts with under __launch_bounds__(threads, ctas) (64 K per SM, granules of 8). */
export function launchRegs(threads: number, ctas: number): number {
  return Math.min(255, Math.floor(65536 / ctas / threads / 8) * 8);
}

/** Shared memory per block on sm_90 (227 KiB), and what the kernel declares besides the tables (barriers, slots, scan bits). */
const SMEM_LIMIT = 227 * 1024;
const SMEM_PER_SM = 228 * 1024;
const STATIC_SLACK = 512;
/** The tile of ones (16 x 8, 2-byte elements) whose product with P gives the row sums (CudaTiles.rowSumMma). */
export const WGMMA_ONES_BYTES = 256;
