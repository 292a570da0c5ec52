// The Hopper kernel skeleton without a producer warpgroup (sm_90a, f16/bf16
// storage, f32 math; the defaults are warp-specialized, cuda-wgmma-ws.ts, and
// this one is the `producer: false` tiling the bench sweeps compare with): the
// FlashAttention-2 loop of cuda-mma.ts with its two matrix products on the
// warpgroup tensor-core path instead of mma.sync:
//   S = Q K^T   wgmma m64nBNk16, Q and K straight from shared memory
//   O += P V    wgmma m64n64k16 per 64 columns of D, P from registers
// A block is warpgroups of 64 query rows (two by default: 8 warps, 256
// threads, BM = 128; schedule/cuda-tiles.ts); every warp owns 16 rows exactly
// as in the 8-warp mma.sync kernel, because the wgmma accumulator fragment of
// a warp is the mma.sync one. That is why the element loop (mask, logit), the
// online softmax and the epilogue are the same code (exported by cuda-mma.ts).
//
// Shared memory: Q, K and V as 128-byte-swizzled atoms (rows of 64 elements,
// 16-byte chunk c of row r stored at chunk c ^ (r % 8), 8-row groups of 1 KiB),
// the layout wgmma's descriptors read without bank conflicts. K/V are double
// buffered through cp.async, one tile ahead; mbarriers (not __syncthreads)
// say when a stage is loaded and when everyone is done with it. next_live()
// may hold a block barrier (table-driven tile tests classify a window of
// tiles per block): every thread calls it at the same points, in order.
import type { CudaTiles } from '../schedule/cuda-tiles.ts';
import { kvStaging, type SpecCode } from './cuda-spec.ts';
import { elemLoopCode, epilogueCode, softmaxCode } from './cuda-mma.ts';

/** Element offset of 16-byte chunk `c` of row `r` in a swizzled [halves][rows][64] tile. */
const swizzled = (rows: string, r: string, c: string) => `((${c}) >> 3) * (${rows} * 64) + (${r}) * 64 + ((((${c}) & 7) ^ ((${r}) & 7)) << 3)`;

/** S = Q K^T for this warpgroup (issued and committed, not waited for): s[1][nt][4], raw f32 dot products. */
export function wgmmaQK(nt: number, declare = true): string {
  return `    // S = Q K^T (raw dot products, f32): k16 steps walk 32 bytes along a 128-byte atom row, then the next 64 columns
${declare ? `    float s[1][${nt}][4];\n` : ''}    attnc_wg_fence();
    #pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk)
      attnc_wgmma_ss<BN>(&s[0][0][0], q_desc + ((kk >> 2) * (BM * 128) + (kk & 3) * 32) / 16,
                     k_desc + ((kk >> 2) * (BN * 128) + (kk & 3) * 32) / 16, kk > 0);
    attnc_wg_commit();`;
}

/** O += P V from the softmaxed S accumulators (issued, committed and waited for). */
export function wgmmaPV(bn: number, halves: number, rowSumTile?: number): string {
  return `    // O += P V: the S accumulators of two n8 tiles are the A fragment of one k16 step
    // (all packed before the fence, so no register the MMAs read changes under them);
    // V rows kk*16.. are two 8-row groups (1 KiB apart) of each 64-column half
    unsigned a[${bn / 16}][4];
${wgmmaPack(bn)}
${wgmmaPVIssue(bn, halves, rowSumTile)}
    attnc_wg_wait<0>();`;
}

/**
 * Packs the softmaxed S accumulators into a[][] (bf16/f16 pairs): the A fragments of P V; `each` wraps every
 * element first (the zero reference's checked path takes 2^x of the logits here, CudaTiles.packedRefCheck).
 */
export function wgmmaPack(bn: number, each: (x: string) => string = (x) => x): string {
  const pack = (lo: string, hi: string) => `attnc_pack(${each(lo)}, ${each(hi)})`;
  return `    #pragma unroll
    for (int kk = 0; kk < ${bn / 16}; ++kk) {
      a[kk][0] = ${pack('s[0][2 * kk][0]', 's[0][2 * kk][1]')};
      a[kk][1] = ${pack('s[0][2 * kk][2]', 's[0][2 * kk][3]')};
      a[kk][2] = ${pack('s[0][2 * kk + 1][0]', 's[0][2 * kk + 1][1]')};
      a[kk][3] = ${pack('s[0][2 * kk + 1][2]', 's[0][2 * kk + 1][3]')};
    }`;
}

/**
 * O += P V from a[][] against v_desc: issued and committed, not waited for. With rowSumTile, P times the
 * tile of ones adds each row's sum of P to o[0][rowSumTile] (CudaTiles.rowSumMma), in the same group.
 */
export function wgmmaPVIssue(bn: number, halves: number, rowSumTile?: number): string {
  const pv = `#pragma unroll
      for (int h = 0; h < ${halves}; ++h)
        attnc_wgmma_rs(&o[0][8 * h][0], a[kk], v_desc + (h * (BN * 128) + kk * 2048) / 16);`;
  return `    attnc_wg_fence();
    #pragma unroll
    for (int kk = 0; kk < ${bn / 16}; ++kk)${rowSumTile === undefined ? `
      ${pv}` : ` {
      ${pv}
      attnc_wgmma_rs_ones(&o[0][${rowSumTile}][0], a[kk], ones_desc);
    }`}
    attnc_wg_commit();`;
}

// Pieces of the Hopper kernels shared by this skeleton and the warp-specialized one
// (cuda-wgmma-ws.ts), written at this kernel's indentation.

/** Dynamic shared memory: Q, then `stages` K and V tiles, as 1 KiB-aligned swizzle atoms (then the tile of ones, where asked). */
export function wgmmaSmem(stages: number, qBuffers?: { count: number; elems: number }, ones = false): string {
  const q = qBuffers
    ? `  // ${qBuffers.count} Q buffers of QELEMS elements, one per work item in turn: [HEAD_DIM / 64][BM][64], swizzled; then O staging [BM][STRIDE]
  constexpr int QELEMS = ${qBuffers.elems};
  unsigned short* const sQ0 = attnc_smem;
  unsigned short* sK = sQ0 + ${qBuffers.count} * QELEMS;  // [${stages}][HEAD_DIM / 64][BN][64], swizzled`
    : `  unsigned short* sQ = attnc_smem;              // [HEAD_DIM / 64][BM][64], swizzled; O staging [BM][STRIDE] at the end
  unsigned short* sK = sQ + BM * HEAD_DIM;      // [${stages}][HEAD_DIM / 64][BN][64], swizzled`;
  return `  extern __shared__ __align__(16) unsigned char attnc_smem_raw[];  // one type in every kernel: a TU may hold several
  // Swizzle atoms must start on 1 KiB boundaries: the base is rounded up (1 KiB of slack is allocated).
  unsigned short* const attnc_smem = reinterpret_cast<unsigned short*>(attnc_smem_raw + ((1024u - (attnc_smem_addr(attnc_smem_raw) & 1023u)) & 1023u));
${q}
  unsigned short* sV = sK + ${stages} * BN * HEAD_DIM;  // [${stages}][HEAD_DIM / 64][BN][64], swizzled${ones ? `
  unsigned short* const sOnes = sV + ${stages} * BN * HEAD_DIM;  // [16][8] ones, P's row sums on the tensor cores` : ''}`;
}

/** Where load_kv puts 16-byte chunk c of row r of stage st: swizzled atoms (kvStaging's kvDst). */
export const wgmmaKvDst = (tile: 'sK' | 'sV') => `${tile} + st * (BN * HEAD_DIM) + ${swizzled('BN', 'r', 'c')}`;
/** Bytes from row r to row r + 1 of one chunk column in wgmmaKvDst's layout, for steps of 8 rows (the swizzle repeats every 8). */
export const WGMMA_KV_ROW_BYTES = 64 * 2;

/** The block's Q tile through cp.async into swizzled atoms (rows past Nq zero-filled); run by tid 0..NTHREADS-1. */
export function wgmmaQLoad(): string {
  return `  for (int x = tid; x < BM * CHUNKS; x += NTHREADS) {
    const int r = x / CHUNKS, c = x % CHUNKS;
    const bool ok = row0 + r < Nq;
    attnc_cp_async16(attnc_smem_addr(sQ + ${swizzled('BM', 'r', 'c')}), gQ + (ok ? (size_t)(row0 + r) * HEAD_DIM + c * 8 : 0), ok);
  }`;
}

/**
 * Matrix descriptors of this warpgroup's Q rows and of stage 0's K and V, then the zeroed accumulators.
 * With rowSum, O has one more n8 tile, o[0][nd]: the row sums of P (CudaTiles.rowSumMma), where l_i was.
 */
export function wgmmaConsumerInit(nd: number, rowSum = false): string {
  const oTiles = rowSum ? nd + 1 : nd;
  return `  // Descriptors of this warpgroup's 64 Q rows and of the K/V tiles (stage 0);
  // per-step offsets below are compile-time constants added to the address field.
  // Q and K are K-major (stride 1 KiB between 8-row groups); V is read N-major, one
  // 64-column atom per instruction, so only its 8-row-group stride (1 KiB) is used.
  const unsigned long long q_desc = attnc_wg_desc(attnc_smem_addr(sQ) + (warp >> 2) * (64 * 128), 16, 1024);
  const unsigned long long k_desc0 = attnc_wg_desc(attnc_smem_addr(sK), 16, 1024);
  const unsigned long long v_desc0 = attnc_wg_desc(attnc_smem_addr(sV), 1024, 1024);${rowSum ? `
  // The ones, K-major without swizzle: two 8 x 16-byte core matrices, 128 bytes apart along K.
  const unsigned long long ones_desc = attnc_wg_desc(attnc_smem_addr(sOnes), 128, 128, false);` : ''}

  float o[1][${oTiles}][4];${rowSum ? `  // o[0][${nd}]: every column holds the row's sum of P` : ''}
  #pragma unroll
  for (int n = 0; n < ${oTiles}; ++n) o[0][n][0] = o[0][n][1] = o[0][n][2] = o[0][n][3] = 0.f;
  float m_i[2]${rowSum ? '' : ', l_i[2]'};
  #pragma unroll
  for (int i = 0; i < 2; ++i) { m_i[i] = ATTNC_NEG_INF;${rowSum ? '' : ' l_i[i] = 0.f;'} }`;
}

/** The descriptors of stage \`stage\`'s K and V tiles. */
export const wgmmaStageDescs = `    const unsigned long long k_desc = ${stageDesc('k', 'stage')};
    const unsigned long long v_desc = ${stageDesc('v', 'stage')};`;

/** The descriptor of K's or V's tile in stage `stage` (stage 0's plus the stage offset, in 16-byte units). */
export function stageDesc(operand: 'k' | 'v', stage: string): string {
  return `${operand}_desc0 + ${stage} * (BN * HEAD_DIM * 2 / 16)`;
}

export function renderWgmmaKernel(entry: string, spec: SpecCode, t: CudaTiles, headDim: number, sig: string): string {
  const { bm, bn, threads, stride } = t;
  const nt = bn / 8, nd = headDim / 8, halves = headDim / 64;
  return `extern "C" __global__ void __launch_bounds__(${threads}, ${t.ctas}) ${entry}(${sig}) {
  constexpr int HEAD_DIM = ${headDim}, BM = ${bm}, BN = ${bn}, STRIDE = ${stride}, NTHREADS = ${threads};
  constexpr int CHUNKS = HEAD_DIM / 8;  // 16-byte chunks per row
${wgmmaSmem(2)}
${spec.tableDecls(bm, bn).join('\n')}
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  // Heaviest query blocks (causal: the last ones) first.
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int hq = blockIdx.y, bb = blockIdx.z, hk = hq / (Hq / Hkv);
  const int row0 = m_block * BM;
  const int q0 = row0 + (Nk - Nq);  // q_idx of the block's first row (bottom-right aligned)
${kvStaging(spec, 'unsigned short', 8, bm, bn, threads, { kvDst: wgmmaKvDst })}
  // ---- values per query row (row slot i: rows g and g + 8 of the warp's 16) ----
${spec.rowDecls(2).join('\n')}
  #pragma unroll
  for (int i = 0; i < 2; ++i) {
    (void)i;
${spec.rowFill('q0 + warp * 16 + g + 8 * (i & 1)').join('\n')}
  }

  // ---- barriers: full[s] = stage s loaded (every thread's copies and table stores), empty[s] = stage s read by everyone ----
  // They replace a block-wide __syncthreads per tile, so the two warpgroups can drift apart by up to a
  // tile and one's softmax overlaps the other's matrix products.
  __shared__ __align__(8) unsigned long long attnc_bar[4];
  const unsigned bar_full = attnc_smem_addr(&attnc_bar[0]), bar_empty = attnc_smem_addr(&attnc_bar[2]);
  if (tid == 0) for (int b = 0; b < 4; ++b) attnc_mbar_init(bar_full + 8 * b, NTHREADS);
  __syncthreads();
  auto publish = [&](int st) { attnc_mbar_track_cp(bar_full + 8 * st); attnc_mbar_arrive(bar_full + 8 * st); };

  // ---- prologue: Q tile and the first two live KV tiles ----
${wgmmaQLoad()}
  int j = next_live(0);
  if (j < n_tiles) { load_kv(j, 0); fill_tables(j, 0); }
  publish(0);
  int jn = j < n_tiles ? next_live(j + 1) : n_tiles;
  if (jn < n_tiles) { load_kv(jn, 1); fill_tables(jn, 1); }
  publish(1);

${wgmmaConsumerInit(nd)}

  // ---- main loop over the live KV tiles: tile number k (0, 1, ...) sits in stage k & 1 ----
  for (int k = 0; j < n_tiles; ++k) {
    const int stage = k & 1;
    attnc_mbar_wait(bar_full + 8 * stage, (k >> 1) & 1);
    attnc_fence_async_smem();  // the copies are seen by the tensor cores (async proxy) too
    const int kv0 = j * BN;
${wgmmaStageDescs}

${wgmmaQK(nt)}

    // While S runs: refill the other stage (tile k - 1's, once everyone is done with it) with tile k + 1.
    // Tile 1 came with the prologue.
    if (k > 0) {
      attnc_mbar_wait(bar_empty + 8 * (stage ^ 1), ((k - 1) >> 1) & 1);
      if (jn < n_tiles) { load_kv(jn, stage ^ 1); fill_tables(jn, stage ^ 1); }
      publish(stage ^ 1);
    }
    attnc_wg_wait<0>();

    // logits in the log2 domain; the mask only where the tile test says partial
    if (tile_partial(j)) {
${elemLoopCode(spec, true, 1, nt, 16, bn)}
    } else {
${elemLoopCode(spec, false, 1, nt, 16, bn)}
    }

${softmaxCode(1, nt, nd)}

${wgmmaPV(bn, halves)}
    attnc_mbar_arrive(bar_empty + 8 * stage);  // this thread is done with the stage
    j = jn;
    jn = jn < n_tiles ? next_live(jn + 1) : n_tiles;
  }
  // Every warpgroup is done with Q, and every copy has landed (with no live tile, Q's are still
  // in flight here: no barrier waited for them; wait_group would not either, as none was committed),
  // before O is staged over Q.
  attnc_cp_wait_all();
  __syncthreads();

${epilogueCode(1, nd, 16)}
}
`;
}
