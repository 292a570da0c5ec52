// The CUDA backward's single pass (tuning `fusedDq`, render/cuda-bwd.ts), FlashAttention-2's: the dK/dV launch,
// which already has each item's dS^T (its keys x the item's queries) in registers, also computes the item's share of
// dQ = dS K over its keys and adds it to an f32 scratch dQacc [B, Hq, Nq, D] with atomic reductions. S = Q K^T and
// dP = dO V^T are then computed once per (query tile, key block) instead of once in each launch: 5 products, not 7.
//   <entry>_bwd_prep      delta = rowsum(dO * O) (into Delta, as the dQ launch writes it), dQacc rows zeroed
//   <entry>_bwd_dkdv      as without the variant, plus: dS^T to shared memory (rounded as dK's product rounds it),
//                         one block barrier, dQ += dS K on mma.sync (A by ldmatrix.trans from dS^T, B from the block's
//                         K tile, swizzled or padded), red.global.add of each warp's 16 x 64 share; with
//                         `wgmma-dq` the product on wgmma, with `bulk-dq` the item's dQ staged in shared memory and
//                         added by one bulk reduction (cp.reduce.async.bulk)
//   <entry>_bwd_dq_store  dQ = dQacc rounded to the storage type
// The order of the atomic adds varies from run to run, so dQ is not bit-reproducible (dK and dV are).
import { swizzledChunk, tileChunk } from './cuda-bwd-wgmma.ts';
import type { CudaBackwardTuning } from './cuda-bwd-tuning.ts';

/** Rows a prep or store block owns (64, as the dQ launch's blocks). */
export const FUSED_ROWS = 64;

/** delta = rowsum(dO * O) of the block's 64 rows, two threads a row; with `toShared`, also the rows' delta and LSE (log2). */
export function deltaCode(toShared: boolean): string {
  return `  {
    const int r = tid >> 1, half = tid & 1, row = row0 + r;
    float acc = 0.f;
    if (row < Nq) {
      const unsigned* o2 = reinterpret_cast<const unsigned*>(O + (rows + row) * HEAD_DIM) + half * (HEAD_DIM / 4);
      const unsigned* d2 = reinterpret_cast<const unsigned*>(dO + (rows + row) * HEAD_DIM) + half * (HEAD_DIM / 4);
      #pragma unroll 4
      for (int c = 0; c < HEAD_DIM / 4; ++c) {
        float o_lo, o_hi, d_lo, d_hi;
        attnc_unpack(o2[c], o_lo, o_hi);
        attnc_unpack(d2[c], d_lo, d_hi);
        acc = fmaf(o_lo, d_lo, fmaf(o_hi, d_hi, acc));
      }
    }
    acc += __shfl_xor_sync(0xffffffffu, acc, 1);
    if (half == 0) {${toShared ? `
      sDelta[r] = acc;
      // A row past Nq, or one with no kept key (LSE -inf), gets +inf: its p is 0 wherever it is computed.
      const float lse = row < Nq ? LSE[rows + row] : ATTNC_NEG_INF;
      sLse2[r] = lse == ATTNC_NEG_INF ? -ATTNC_NEG_INF : lse * LOG2E;` : ''}
      if (row < Nq) Delta[rows + row] = acc;
    }
  }`;
}

/** Two f32 atomically added at p, p + 1 (8-byte aligned): one vector reduction on sm_90, two scalar ones before. */
export function redHelper(vector: boolean): string {
  return `// dQ's partial sums: two adjacent f32 added to global memory (relaxed, no value returned).
__device__ __forceinline__ void attnc_red_add2(float* p, float a, float b) {
${vector ? '  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};" :: "l"(p), "f"(a), "f"(b) : "memory");'
    : '  asm volatile("red.global.add.f32 [%0], %1;" :: "l"(p), "f"(a) : "memory");\n  asm volatile("red.global.add.f32 [%0], %1;" :: "l"(p + 1), "f"(b) : "memory");'}
}`;
}

/**
 * tuning bulkDq: rows of f32 in shared memory added to global memory by the copy engine (async proxy; sm_90), one
 * bulk group per issuing thread; the reads out of shared memory waited for before it is rewritten, all of it before
 * the block exits.
 */
export const BULK_HELPERS = `// dQ's partial sums of an item: f32 in shared memory added to global memory by the copy engine.
__device__ __forceinline__ void attnc_bulk_red_add(float* dst, unsigned src, unsigned bytes) {
  asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;" :: "l"(dst), "r"(src), "r"(bytes) : "memory");
}
__device__ __forceinline__ void attnc_bulk_commit() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }
// Every bulk group of this thread but the newest N has read its shared memory (.read) or completed.
template <int N> __device__ __forceinline__ void attnc_bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read %0;" :: "n"(N) : "memory"); }
template <int N> __device__ __forceinline__ void attnc_bulk_wait() { asm volatile("cp.async.bulk.wait_group %0;" :: "n"(N) : "memory"); }
`;

/**
 * tuning bulkDq: the f32 staging tile of an item's dQ, [QT][HEAD_DIM] as dQacc holds the item's rows (unpadded, so
 * that one copy takes them all: a reduction a row, 64 an item, lost 11-35% on the H100), in the dynamic shared memory.
 */
export const dqStageBytes = (qt: number, headDim: number) => qt * headDim * 4;

/**
 * tuning bulkDq: the staged item's rows (dq_base.., dq_valid of them, contiguous in dQacc) added to dQacc by thread 0
 * in one bulk reduction; after a block barrier that follows every thread's proxy fence.
 */
export const DQ_FLUSH = `if (tid == 0 && dq_valid > 0) {
      attnc_bulk_red_add(dQacc + dq_base * HEAD_DIM, attnc_smem_addr(sDQ), dq_valid * HEAD_DIM * 4);
      attnc_bulk_commit();
    }`;

function small(entry: string, sig: string, headDim: number, body: string): string {
  return `extern "C" __global__ void __launch_bounds__(128, 1) ${entry}(${sig}) {
  constexpr int HEAD_DIM = ${headDim}, NTHREADS = 128, BM = ${FUSED_ROWS};
  const int tid = threadIdx.x, bb = blockIdx.z, hq = blockIdx.y, row0 = blockIdx.x * BM;
  const size_t rows = (size_t)(bb * Hq + hq) * Nq;
${body}
}
`;
}

/** The launch before dK/dV: delta of the block's rows, and its rows of dQacc zeroed. */
export function prepKernel(entry: string, sig: string, headDim: number): string {
  return small(entry, sig, headDim, `${deltaCode(false)}
  float4 zero;
  zero.x = zero.y = zero.z = zero.w = 0.f;
  float4* acc = reinterpret_cast<float4*>(dQacc + (rows + row0) * HEAD_DIM);
  for (int x = tid; x < BM * HEAD_DIM / 4; x += NTHREADS)
    if (row0 + x / (HEAD_DIM / 4) < Nq) acc[x] = zero;`);
}

/** The launch after dK/dV: dQ = dQacc in the storage type. */
export function storeKernel(entry: string, sig: string, headDim: number): string {
  return small(entry, sig, headDim, `  const float2* acc = reinterpret_cast<const float2*>(dQacc + (rows + row0) * HEAD_DIM);
  unsigned* out = reinterpret_cast<unsigned*>(dQ + (rows + row0) * HEAD_DIM);
  for (int x = tid; x < BM * HEAD_DIM / 2; x += NTHREADS)
    if (row0 + x / (HEAD_DIM / 2) < Nq) { const float2 v = acc[x]; out[x] = attnc_pack(v.x, v.y); }`);
}

/** The shared dS^T of an item: [BK][QT + 8] (padded rows for ldmatrix). */
export const dsDecl = (qt: number, bk: number) => `  constexpr int DS_STRIDE = ${qt + 8};
  __shared__ __align__(16) unsigned short sDS[${bk} * DS_STRIDE];`;

/**
 * The single pass's dS^T (in `dp`: rows the warp's 16 keys, columns the item's queries) to shared memory at sDS[at(key
 * row)] for each warp's rows, then the block barrier; `asyncRead`: the tensor cores read it next (a proxy fence first).
 */
function dsToShared(what: string, at: (row: string) => string, asyncRead: boolean, bulk: boolean): string {
  return `    // dS^T (rounded as dK's product rounds it) to shared memory, ${what}
    #pragma unroll
    for (int n = 0; n < NT; ++n) {
      *reinterpret_cast<unsigned*>(&sDS[${at('warp * 16 + g')}]) = attnc_pack(dp[n][0], dp[n][1]);
      *reinterpret_cast<unsigned*>(&sDS[${at('warp * 16 + g + 8')}]) = attnc_pack(dp[n][2], dp[n][3]);
    }${asyncRead ? `
    attnc_fence_async_smem();  // stored here, read next by the tensor cores (async proxy)` : ''}${bulk ? `
    if (tid == 0) attnc_bulk_wait_read<0>();  // the last item's dQ read out of sDQ before this barrier frees it` : ''}
    __syncthreads();  // every warp's keys of dS^T written (the loop's next barrier guards their reuse)`;
}

/**
 * A warp's dq[count][4] (item rows `row0` + g and + 8, columns `col` + 8 n + 2 t4) added to dQacc, rows past Nq left
 * out; `bulk`: stored to the staging tile sDQ instead (every row; the flush leaves out those past Nq).
 */
function dqAdd(ind: string, row0: string, col: string, count: string, bulk: boolean): string {
  if (bulk) {
    return `${ind}#pragma unroll
${ind}for (int h = 0; h < 2; ++h) {
${ind}  float* dst = sDQ + (${row0} + g + 8 * h) * HEAD_DIM + ${col} + 2 * t4;
${ind}  #pragma unroll
${ind}  for (int n = 0; n < ${count}; ++n) *reinterpret_cast<float2*>(dst + n * 8) = make_float2(dq[n][2 * h], dq[n][2 * h + 1]);
${ind}}`;
  }
  return `${ind}#pragma unroll
${ind}for (int h = 0; h < 2; ++h) {
${ind}  const int row = qrow0 + ${row0} + g + 8 * h;
${ind}  if (row < Nq) {
${ind}    float* dst = dQacc + ((size_t)(bb * Hq + hq) * Nq + row) * HEAD_DIM + ${col} + 2 * t4;
${ind}    #pragma unroll
${ind}    for (int n = 0; n < ${count}; ++n) attnc_red_add2(dst + n * 8, dq[n][2 * h], dq[n][2 * h + 1]);
${ind}  }
${ind}}`;
}

/** tuning bulkDq: after the item's dQ is staged, which rows the next flush adds where (block-uniform). */
const bulkMark = (bulk: boolean) => (bulk ? `
    dq_base = (size_t)(bb * Hq + hq) * Nq + qrow0;
    dq_valid = min(QT, Nq - qrow0);` : '');

/**
 * In the dK/dV loop, after the element step (`dp` holds dS^T: rows the warp's 16 keys, columns the item's QT
 * queries): dS^T to shared memory, a block barrier, then warp w's share of the item's dQ = dS K over the block's
 * BK keys, query rows 16 (w % (QT / 16)).. and DC = HEAD_DIM / (warps / (QT / 16)) columns of D from
 * DC (w / (QT / 16)), added to dQacc. `swizzled`: K is the wgmma kernel's swizzled tile (tileChunk of `bk` rows);
 * otherwise padded rows of STRIDE.
 */
export function fusedDqCode(qt: number, bk: number, headDim: number, warps: number, swizzled: boolean, bulk: boolean): string {
  const dc = headDim / (warps / (qt / 16));
  // Two-warpgroup blocks at D = 128 hold dK and dV of 64 columns per thread pair each: their 64 dQ columns a warp
  // go in two passes of 32, so that 16 accumulators, not 32, are live beside them (with 32, ptxas spilled 132-168
  // bytes). Elsewhere one pass, as measured.
  const pass = warps === 8 && dc > 32 ? 32 : dc;
  const passes = dc / pass;
  const col = passes > 1 ? 'dc0 + p * DP' : 'dc0';
  const kAddr = swizzled
    ? `attnc_smem_addr(sK + ${tileChunk(bk, 'kk * 16 + (lane & 15)', `((${col} + dn * 16) >> 3) + (lane >> 4)`)})`
    : `k_dq + (kk * 16 * STRIDE + ${col} + dn * 16) * 2`;
  const body = (ind: string, dp: string) => `${ind}float dq[${dp} / 8][4];
${ind}#pragma unroll
${ind}for (int n = 0; n < ${dp} / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
${ind}#pragma unroll
${ind}for (int kk = 0; kk < BK / 16; ++kk) {
${ind}  unsigned a[4];
${ind}  attnc_ldsm_x4_t(a[0], a[1], a[2], a[3], ds_a + kk * 16 * DS_STRIDE * 2);  // dS: 16 queries x 16 keys
${ind}  #pragma unroll
${ind}  for (int dn = 0; dn < ${dp} / 16; ++dn) {
${ind}    unsigned b0, b1, b2, b3;
${ind}    attnc_ldsm_x4_t(b0, b1, b2, b3, ${kAddr});
${ind}    attnc_mma(dq[2 * dn], a, b0, b1);
${ind}    attnc_mma(dq[2 * dn + 1], a, b2, b3);
${ind}  }
${ind}}
${dqAdd(ind, 'qr0', col, `${dp} / 8`, bulk)}`;
  const product = passes > 1
    ? `      constexpr int DP = ${pass};  // columns of one pass
      #pragma unroll 1
      for (int p = 0; p < DC / DP; ++p) {
${body('        ', 'DP')}
      }`
    : body('      ', 'DC');
  return `${dsToShared('for dQ += dS K over the block\'s keys', (row) => `(${row}) * DS_STRIDE + n * 8 + 2 * t4`, false, bulk)}
    {
      // warp w: query rows qr0.. (16) of the item, columns dc0.. (${dc}) of D; the k16 steps walk the block's keys
      constexpr int DC = ${dc};
      const int qr0 = 16 * (warp % (QT / 16)), dc0 = DC * (warp / (QT / 16));
      const unsigned ds_a = attnc_smem_addr(sDS + ((lane & 7) + ((lane >> 4) << 3)) * DS_STRIDE + qr0 + ((lane >> 3) & 1) * 8);
${product}
    }${bulkMark(bulk)}`;
}

/**
 * Whether the single pass's dQ runs on wgmma (tuning wgmmaDq): wgmma products, 64-query items (wgmma's M), and D's
 * 64-column blocks shared evenly by the block's warpgroups (at D = 64 in two-warpgroup blocks one would idle).
 */
export function wgmmaDqOn(tuning: CudaBackwardTuning, wg: boolean, fused: boolean, qt: number, headDim: number, warpgroups: number): boolean {
  return wg && fused && qt === 64 && (headDim / 64) % warpgroups === 0 && !!tuning.wgmmaDq;
}

/**
 * tuning wgmmaDq, in place of fusedDqCode: dS^T to shared memory as [BK keys][64 queries] in 128-byte swizzled rows
 * (`sDS`, in the dynamic shared memory, 1 KiB aligned), then warpgroup w of `warpgroups` takes D's 64-column blocks
 * w, w + warpgroups, ...: dQ (64 queries x 64 columns) += dS K over the block's BK keys, one m64n64k16 a 16-key step
 * with both operands read MN-major (dS^T's rows and K's rows are keys; `k_dq_n` describes K's whole tile), and its
 * 32 accumulators added to dQacc as the mma.sync path adds its own.
 */
export function fusedDqWgmmaCode(bk: number, warpgroups: number, bulk: boolean): string {
  return `${dsToShared('swizzled: the A operand of dQ += dS K', (row) => `${swizzledChunk(bk, row, 'n')} + 2 * t4`, true, bulk)}
    #pragma unroll 1
    for (int c = warp >> 2; c < HEAD_DIM / 64; c += ${warpgroups}) {
      // this warpgroup's columns 64 c.. of the item's dQ, over the block's keys: k16 steps of 16 rows of both tiles
      float dq[8][4];
      attnc_wg_fence();
      #pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk)
        attnc_wgmma_ss_t(&dq[0][0], ds_n + kk * (16 * 128 / 16), k_dq_n + (${tileChunk(bk, 'kk * 16', 'c * 8')}) / 8, kk > 0);
      attnc_wg_commit();
      attnc_wg_wait<0>();
${dqAdd('      ', '16 * (warp & 3)', 'c * 64', '8', bulk)}
    }${bulkMark(bulk)}`;
}

/**
 * Whether the single pass's warp split fits: `warps` over (QT / 16) row groups x column groups of D, 64 columns each
 * (the split measured with one warpgroup), or 32 in two-warpgroup blocks at D = 64.
 */
export function fusedDqFits(qt: number, headDim: number, warps: number): boolean {
  const groups = warps / (qt / 16);
  return Number.isInteger(groups) && (headDim === 64 * groups || (warps === 8 && headDim === 32 * groups));
}

/**
 * Whether the dK/dV loop takes tuning dqOverlap: the single pass's dQ on wgmma staged for bulk reductions (wgmma-dq,
 * bulk-dq), FlashAttention-3's order (`overlap`: with softcap's g, which reads the dot product, ptxas spilled 256
 * bytes), one 64-column block of D per warpgroup (D = 128 in two-warpgroup blocks, D = 64 in one), two stages.
 */
export function dqOverlapOn(tuning: CudaBackwardTuning, tcDq: boolean, bulk: boolean, overlap: boolean, headDim: number, warpgroups: number, ring: number): boolean {
  return !!tuning.dqOverlap && tcDq && bulk && overlap && headDim / 64 === warpgroups && ring === 2;
}

/**
 * tuning dqOverlap: the dK/dV item loop with the item boundary in the shadow of dQ's product. An item issues dQ += dS K
 * and does not wait for it: it waits for dV's and dK's products only, then passes the next item's barrier (its
 * copies landed, this item's stage free) while the tensor cores run dQ's product; the next item waits for that
 * product first, stages it in sDQ, then issues the copies of the item after it into the other stage (in the shadow,
 * the copies' registers were live beside dQ's accumulators: ptxas spilled), and the flush after its dS^T barrier adds
 * the staged dQ to dQacc. `walkInShadow`: the item after next is found in the shadow too (not where the walk scans
 * tables a window at a time, scan-window's per-thread scans: their loads in flight spilled there). dS^T is
 * double-buffered (`sDS0`): a warpgroup's dQ product reads every key's dS^T while the other warpgroup may already
 * write the next item's. `body` is the item's products and element steps through dK's product; `next` finds the next
 * live item and `fill` issues an item's copies into a stage.
 */
export function dqOverlapLoop(body: string, bk: number, next: string, fill: (it: string, st: string) => string, walkInShadow: boolean): string {
  const walk = `${next}(it + 1)`;
  const stage = `#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float* dst = sDQ + (16 * (warp & 3) + g + 8 * h) * HEAD_DIM + (warp >> 2) * 64 + 2 * t4;
        #pragma unroll
        for (int n = 0; n < 8; ++n) *reinterpret_cast<float2*>(dst + n * 8) = make_float2(dq[n][2 * h], dq[n][2 * h + 1]);
      }`;
  return `  float dq[8][4];  // this warpgroup's 64 columns of D of the last item's dQ, its product in flight into the next item
  bool dq_pending = false;
  int ds_buf = 0;  // which half of sDS0 this item's dS^T goes to
  attnc_cp_wait<0>();
  attnc_fence_async_smem();
  __syncthreads();  // the first item's Q, dO, LSE and delta visible${walkInShadow ? `
  int itn = it < items ? ${walk} : items;` : ''}

  while (it < items) {
    attnc_wg_wait<0>();  // the last item's dQ landed (unconditional: ptxas tracks the accumulators in flight by position)
    if (dq_pending) {  // to sDQ, fenced below, added to dQacc after this item's dS^T barrier
      ${stage}
    }
${walkInShadow ? '' : `    const int itn = ${walk};
`}    if (itn < items) ${fill('itn', 'stage ^ 1')}
    attnc_cp_commit();
${body}
    unsigned short* const sDS = sDS0 + ds_buf * (BK * 64);
${dsToShared('swizzled: the A operand of dQ += dS K', (row) => `${swizzledChunk(bk, row, 'n')} + 2 * t4`, true, false)}
    // the last item's dQ, staged and fenced by every thread before the barrier above
    ${DQ_FLUSH}
    {
      // this warpgroup's columns 64 (warp >> 2).. of the item's dQ, over the block's keys: issued, waited for by the next item
      const int c = warp >> 2;
      attnc_wg_fence();
      #pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk)
        attnc_wgmma_ss_t(&dq[0][0], ds_n + ds_buf * (BK * 64 * 2 / 16) + kk * (16 * 128 / 16), k_dq_n + (${tileChunk(bk, 'kk * 16', 'c * 8')}) / 8, kk > 0);
      attnc_wg_commit();
    }${bulkMark(true)}
    dq_pending = true;
    attnc_wg_wait<1>();  // dV's and dK's products done (dQ's runs on): this item's stage is free after the barrier below
    if (tid == 0) attnc_bulk_wait_read<0>();  // the flush above read sDQ before the barrier below lets it be restaged
    attnc_cp_wait<0>();
    attnc_fence_async_smem();
    __syncthreads();  // item itn's Q, dO, LSE and delta visible; this item's stage free
    it = itn;${walkInShadow ? `
    itn = it < items ? ${walk} : items;  // the item after it, found in the shadow too` : ''}
    stage ^= 1;
    ds_buf ^= 1;
  }
  attnc_wg_wait<0>();
  if (dq_pending) {  // the last item's dQ, staged for the flush that follows
    ${stage}
  }
`;
}
