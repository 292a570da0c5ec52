// The CUDA backward's variants (render/cuda-bwd.ts): what each one changes, which ones a call gets by default, and how a set of them
// is named on the command line (--cuda-bwd), in the environment (ATTNC_CUDA_BWD) and in a manifest (abi.tuning).

/**
 * Variants of the backward kernels, each a change to the first kernels (render/cuda-bwd.ts without any). Which
 * ones a call gets by default is defaultBackwardTuning's choice per arch and head dim, from a measured A/B; a set
 * named on the command line (--cuda-bwd) or in ATTNC_CUDA_BWD replaces it.
 */
export interface CudaBackwardTuning {
  /**
   * The forward kernel's element code (SpecCode.elem): per-row values in registers, per-key and per-diagonal
   * values from shared tables filled per tile, head values once per tile; g of an affine logit read as a2 ln 2.
   * Without it: each element evaluates the logit, g and the mask from the IR in full (nvcc hoists what it can).
   */
  tables?: boolean;
  /**
   * The dK/dV launch copies a query tile's LSE and delta with cp.async beside its Q and dO, and converts the LSE
   * where it is read. Without it: plain loads, whose latency the block waits out once per query tile.
   */
  asyncStats?: boolean;
  /**
   * For masks whose tile test scans tables (documents): the dK/dV launch classifies its items (query head, query
   * tile) a window of 128 at a time, one item per thread with its own scans, so that their latencies overlap, as
   * the forward and dQ kernels classify KV tiles (cuda-spec.ts tileWindow); the block's key range is scanned once.
   * Without it: one warp-cooperative test per item in turn, each a dependent round trip to global memory.
   */
  scanWindow?: boolean;
  /**
   * Hopper's warpgroup tensor cores for the products of both launches (cuda-bwd-wgmma.ts: wgmma with the forward's
   * swizzled tiles; sm_90a only, head dims 64 and 128, elsewhere ignored). Without it: mma.sync, any arch from sm_80.
   */
  wgmma?: boolean;
  /**
   * FlashAttention-2's single pass: the dK/dV launch also adds each item's dQ = dS K (dS through shared memory, on
   * mma.sync) into an f32 scratch with atomic adds, so S and dP are computed once, not in both launches (5 products
   * where there were 7); a small launch before it writes delta and zeroes the scratch, one after it rounds dQ.
   * Without it: a dQ launch of its own that recomputes S and dP (no atomics, deterministic).
   */
  fusedDq?: boolean;
  /**
   * Blocks of two warpgroups (8 warps, 256 threads) that own 64 rows each and share every loop tile (wgmma only;
   * elsewhere ignored): the dK/dV launch's blocks own 128 keys and walk 64-query tiles at every head dim, the dQ
   * launch's own 128 query rows. Per row owned, half the tile copies and block barriers; S^T and dP^T are m64n64
   * products at D = 128 (m64n32 without it), and one warpgroup's element step can run beside the other's products.
   * dK, dV, S^T and dP^T of a thread take 192 registers at D = 128, within the 255 of a 256-thread block.
   * Without it: one warpgroup of 64 rows a block.
   */
  twoWarpgroups?: boolean;
  /**
   * Both launches' rings of copy stages three deep: each loop tile (the dK/dV launch's item of Q, dO and stats, the
   * dQ launch's K and V) and its tables are copied two turns ahead, so that a copy has two turns' products to land
   * in, not one. Without it: two stages (double buffering).
   */
  threeStages?: boolean;
  /**
   * FlashAttention-3's order inside a warpgroup (wgmma with `tables`, affine logits only, as g must not read the dot
   * product; elsewhere ignored): S and dP in two commit groups, p computed while dP's product runs; in the dK/dV
   * launch dV += P^T dO issued before dS is computed and run beside it, then dK += dS^T Q. Without it: both products
   * waited for, the element step, then both accumulations.
   */
  overlap?: boolean;
  /**
   * In the single pass on wgmma (fused-dq; elsewhere ignored), the dK/dV launch leaves dV's and dK's products running
   * through the item's dQ step (dS^T to shared memory, the block barrier, dQ += dS K and its atomic adds) and waits
   * for them at the item's end, before the barrier that frees their stage: the dQ step's loads, stores and atomics
   * run beside the tensor cores' work instead of after it (Nsight Compute on the defaults: warps waited for wgmma in
   * 2.4% of stall samples, for everything else in the rest). Costs the products' A fragments (32 registers a
   * thread) held through the dQ step. Without it: dK's product is waited for before dS^T is stored.
   */
  lateWait?: boolean;
  /**
   * In the single pass on wgmma with 64-query items (fused-dq; D = 64 in one-warpgroup blocks, or D = 128 with two-wg;
   * elsewhere ignored), dQ += dS K on the warpgroup tensor cores: dS^T goes to shared memory in 128-byte swizzled rows
   * and both operands are read MN-major, one m64n64 product per 64 columns of D, where the default is mma.sync with
   * ldmatrix reads of dS and K per warp (Nsight Compute: 5% of the HMMA pipe, beside 69 M shared loads in the dK/dV
   * launch).
   */
  wgmmaDq?: boolean;
  /**
   * In the single pass on wgmma (fused-dq; elsewhere ignored), an item's dQ goes to an f32 staging tile in shared
   * memory laid out as dQacc holds the item's rows, and thread 0 adds it to dQacc with one bulk reduction
   * (cp.reduce.async.bulk, the copy engine, sm_90), issued after the next item's first barrier and read out of
   * shared memory before the next staging. Without it: each thread's 8-byte red.global adds (Nsight Compute on the D = 128 defaults: the adds, a
   * register reuse waiting on their operands, and the proxy fence that waits for them to drain at the next item took
   * about a fifth of the dK/dV launch's stall samples).
   */
  bulkDq?: boolean;
  /**
   * The dK/dV launch finds its next live item 32 at a time, lane l of each warp testing item it + l and a ballot
   * picking the first live one, as the forward finds KV tiles (cuda-spec.ts tileClassifier), where a mask's test
   * reads no table (elsewhere ignored: scan-window's windows, or one item at a time). Without it: one item at a time,
   * each test an integer division and a dependent branch; a block of a 1024-key window at N = 16384 walks past
   * about 237 dead items (about 19 live), a causal block past half of its 256 on average.
   */
  ballotItems?: boolean;
  /**
   * A persistent dK/dV launch: block b takes the (key block, kv head, batch) tiles b, b + G, b + 2G, ... of the G
   * blocks launched (the fast grid: one block per SM, abi stage `persistent`; the full grid gives each block one
   * tile, as without it). At a tile's end the block waits for its warps at one barrier, issues the next tile's K, V
   * and first item's copies, and only then stores the last tile's dK and dV from its registers, so that the stores
   * and the copies' latency overlap; the last item's dQ reduction (bulk-dq) is issued at the next tile's first
   * barrier. Without it: one tile a block, each block's prologue (K, V, first item) and epilogue (dK, dV) in turn;
   * a 1024-key window's block uses about 19 items, so those weigh more there (an estimate: not profiled).
   */
  persistent?: boolean;
  /**
   * The single pass's item boundary in the shadow of dQ's product (wgmma-dq with bulk-dq, one 64-column block of D a
   * warpgroup, FlashAttention-3's order: D = 128 in two-warpgroup blocks, D = 64 in one; elsewhere ignored): an item
   * issues dQ += dS K, waits for dV's and dK's products only, and passes the next item's barrier (and, where the walk
   * reads no table, finds the item after it) while the tensor cores run dQ's product; the next item waits for it
   * first, stages it for the bulk reduction after its own dS^T barrier, and issues the copies of the item after it.
   * dS^T is double-buffered (16 KiB more shared memory at D = 128). Without it: an item waits for dQ's product,
   * stages it, and only then comes to the next item's barrier, walk and copies, while the tensor cores idle.
   */
  dqOverlap?: boolean;
}

const TUNING_NAMES: Record<string, keyof CudaBackwardTuning> = { tables: 'tables', 'async-stats': 'asyncStats', 'scan-window': 'scanWindow', wgmma: 'wgmma', 'fused-dq': 'fusedDq', 'two-wg': 'twoWarpgroups', 'three-stages': 'threeStages', overlap: 'overlap', 'late-wait': 'lateWait', 'wgmma-dq': 'wgmmaDq', 'bulk-dq': 'bulkDq', 'ballot-items': 'ballotItems', persistent: 'persistent', 'dq-overlap': 'dqOverlap' };
export const BACKWARD_TUNING_SYNTAX = `a comma list of ${Object.keys(TUNING_NAMES).join(', ')}, or 'default' (the arch's defaults) or 'none' (the first kernels)`;

/**
 * The backward kernels a call gets when it names no variants, from two training-step A/Bs on an H100 (bf16,
 * N = 16384, every variant's gradients checked against Flex's before it was timed, then against float64 by
 * scripts/gpu-verify.sh and under compute-sanitizer by scripts/gpu-bwd-sanitize.sh):
 * - bench/results/h100-2026-12-05-train-ab.json: on sm_90a tables, async-stats, scan-window and wgmma won for every
 *   spec at both head dims (1.09-4.55x the first kernels), and fused-dq on top of them at D = 64 for every spec
 *   (1.02-1.34x); on sm_80 (no wgmma) the first three, which did not lose anywhere (0.99-3.62x with mma.sync on the
 *   same H100), without fused-dq (0.76-0.98x there for most specs).
 * - bench/results/h100-2026-12-05-train-ab2.json: at D = 128 two-wg + overlap + fused-dq on top of those four won
 *   for every spec (1.07-1.24x the four alone; two-wg alone 1.09-1.20x, overlap alone 0.97-1.01x, three-stages
 *   lost 1-4% wherever it was added); at D = 64 two-wg lost (0.72-0.95x without fused-dq, 0.97-1.06x with it), so
 *   D = 64 keeps one warpgroup a block.
 * - bench/results/h100-2026-12-05-train-d128.json: the D = 128 set with the single pass's dQ in two column passes
 *   (no spills; cuda-bwd-fused.ts): 1.12-1.45x the four alone, 0.99-1.34x two-wg + overlap without fused-dq.
 * - bench/results/h100-2026-12-05-train-ab3.json: at D = 128 wgmma-dq + late-wait on top of that set won for every
 *   spec (1.03-1.08x; either alone 0.94-1.04x). At D = 64 two-wg + overlap + late-wait on top of the single pass
 *   won for the masks whose tile test reads no table (scale_invariant 1.03, causal 1.06, alibi 1.07, softcap 1.04,
 *   sliding_window 0.99) and lost for document (0.98), whose dK/dV launch also spills 8 bytes in that shape: so
 *   D = 64 takes two warpgroups a block where the mask's tile test scans no table (scansTables), one elsewhere.
 * - bench/results/h100-2026-12-05-train-bulk.json: bulk-dq (one bulk reduction an item) on top of those won for every
 *   spec timed: at D = 128 all six (1.04-1.09x), at D = 64 in two-warpgroup blocks the five whose masks scan no
 *   table (1.04-1.08x). Not timed in one-warpgroup blocks (document at D = 64), which keep the red.global adds.
 *   A reduction a row (64 an item) had lost 11-35% (bench/results/h100-2026-12-05-train-bulk-rows.json).
 * - bench/results/h100-2026-12-06-train-ballot.json: ballot-items on top of those won where the mask's live queries
 *   end before the last (liveQueriesEnd: a window), sliding_window 1.19x at D = 64 and 1.12x at D = 128, and lost
 *   2-3% for causal, whose items stay live to the end (so only there); with a persistent dK/dV launch too, 1.23x at
 *   D = 64 but 1.10x at D = 128 and 0.94x for document, and it spills (left off). In one-warpgroup blocks at D = 64
 *   (document) bulk-dq won 1.05x (causal 0.94x there, but causal takes two warpgroups). dq-overlap lost 6-10%.
 */
export function defaultBackwardTuning(arch: 'sm_80' | 'sm_90a' | undefined, headDim: number, scansTables = false, liveQueriesEnd = false): CudaBackwardTuning {
  const portable = { tables: true, asyncStats: true, scanWindow: true };
  if (arch !== 'sm_90a') return portable;
  const ballot = liveQueriesEnd && !scansTables ? { ballotItems: true } : {};
  // D = 128 is the one wide head dim that both measured and has wgmma kernels; others (e.g. 96, on mma.sync) keep the
  // D = 128 rule of the first A/B, no fused-dq (two-wg and overlap would be ignored there anyway).
  if (headDim === 128) return { ...portable, wgmma: true, fusedDq: true, twoWarpgroups: true, overlap: true, lateWait: true, wgmmaDq: true, bulkDq: true, ...ballot };
  if (headDim > 64) return { ...portable, wgmma: true };
  const twoWarpgroups = headDim === 64 && !scansTables;  // below 64 there is no wgmma kernel to take them
  if (!twoWarpgroups) return { ...portable, wgmma: true, fusedDq: true, ...(headDim === 64 ? { bulkDq: true } : {}) };
  return { ...portable, wgmma: true, fusedDq: true, twoWarpgroups: true, overlap: true, lateWait: true, bulkDq: true, ...ballot };
}

/**
 * A --cuda-bwd / ATTNC_CUDA_BWD list as tuning ('default': undefined, the arch's defaults; 'none': {}, the first
 * kernels with no variant), or a one-line reason it does not parse.
 */
export function parseBackwardTuning(s: string): CudaBackwardTuning | undefined | string {
  const words = s.split(',').map((w) => w.trim()).filter(Boolean);
  if (words.length === 1 && words[0] === 'default') return undefined;
  const out: CudaBackwardTuning = {};
  for (const word of words) {
    if (word === 'none') continue;
    const key = TUNING_NAMES[word];
    if (!key) return `unknown backward variant '${word}': expected ${BACKWARD_TUNING_SYNTAX}`;
    out[key] = true;
  }
  return out;
}

/** The variant list of a tuning, as parseBackwardTuning reads it ('' for the defaults, undefined; 'none' for {}). */
export function backwardTuningLabel(t: CudaBackwardTuning | undefined): string {
  if (!t) return '';
  return Object.entries(TUNING_NAMES).filter(([, key]) => t[key]).map(([name]) => name).join(',') || 'none';
}
