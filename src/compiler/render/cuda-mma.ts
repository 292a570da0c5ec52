// The tensor-core kernel skeleton (f16/bf16 storage, f32 math), FlashAttention-2
// structure: a block owns BM = 16 * warps query rows of one (batch, head);
// each warp owns 16 rows with its Q fragments in registers and loops over
// the live KV tiles:
//   S = Q K^T           mma.sync m16n8k16 (K via ldmatrix.x4)
//   logit2 = transform  affine: one FMA (a*log2e, c*log2e) per element
//   online softmax      row max/sum over the 4 lanes of a quad (shuffles), exp2
//   O += P V            P re-packed from the S accumulators in registers (V via ldmatrix.x4.trans)
// K/V tiles come through cp.async, double-buffered in shared memory (rows
// padded by 16 bytes: conflict-free ldmatrix). Tiles whose mask interval test
// says "no pair kept" are skipped (next_live); the mask is evaluated per
// element only on tiles the test calls partial (or at the ragged end).
import type { CudaTiles } from '../schedule/cuda-tiles.ts';
import { kvStaging, maskedLogit, type SpecCode } from './cuda-spec.ts';

export function renderMmaKernel(entry: string, spec: SpecCode, t: CudaTiles, headDim: number, sig: string): string {
  const { bm, bn, threads, stride } = t;
  const kd = headDim / 16, nt = bn / 8, nd = headDim / 8, mt = t.mt;
  const wr = 16 * mt; // rows per warp
  // Q fragments stay in registers unless that would not fit next to O and S.
  const qRegs = mt === 1 || headDim <= 64;
  return `extern "C" __global__ void __launch_bounds__(${threads}, 1) ${entry}(${sig}) {
  constexpr int HEAD_DIM = ${headDim}, BM = ${bm}, BN = ${bn}, STRIDE = ${stride}, NTHREADS = ${threads};
  constexpr int CHUNKS = HEAD_DIM / 8;  // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char attnc_smem_raw[];  // one type in every kernel: a TU may hold several
  unsigned short* const attnc_smem = reinterpret_cast<unsigned short*>(attnc_smem_raw);
  unsigned short* sQ = attnc_smem;              // [BM][STRIDE]
  unsigned short* sK = sQ + BM * STRIDE;        // [2][BN][STRIDE]
  unsigned short* sV = sK + 2 * BN * STRIDE;    // [2][BN][STRIDE]
${spec.tableDecls(bm, bn).join('\n')}
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  // Heaviest query blocks (causal: the last ones) first.
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int hq = blockIdx.y, bb = blockIdx.z, hk = hq / (Hq / Hkv);
  const int row0 = m_block * BM;
  const int q0 = row0 + (Nk - Nq);  // q_idx of the block's first row (bottom-right aligned)
${kvStaging(spec, 'unsigned short', 8, bm, bn, threads)}
  // ---- values per query row (row slot i: rows g and g + 8 of each m16 tile of the warp) ----
${spec.rowDecls(2 * mt).join('\n')}
  #pragma unroll
  for (int i = 0; i < ${2 * mt}; ++i) {
    (void)i;
${spec.rowFill(`q0 + warp * ${wr} + (i >> 1) * 16 + g + 8 * (i & 1)`).join('\n')}
  }

  // ---- prologue: Q tile and the first live KV tile ----
  for (int x = tid; x < BM * CHUNKS; x += NTHREADS) {
    const int r = x / CHUNKS, c = x % CHUNKS;
    const bool ok = row0 + r < Nq;
    attnc_cp_async16(attnc_smem_addr(sQ + r * STRIDE + c * 8), gQ + (ok ? (size_t)(row0 + r) * HEAD_DIM + c * 8 : 0), ok);
  }
  attnc_cp_commit();
  int j = next_live(0);
  if (j < n_tiles) { load_kv(j, 0); fill_tables(j, 0); }
  attnc_cp_commit();
  attnc_cp_wait<1>();
  __syncthreads();
  // ldmatrix.x4 lane addresses. K (B operand of S = Q K^T, non-transposed):
  // matrices (keys 0-7, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 0-7), (keys 8-15, d 8-15).
  // V (B operand of O = P V, transposed): (keys 0-7, d 0-7), (keys 8-15, d 0-7), (keys 0-7, d 8-15), ...
  const unsigned k_lane = attnc_smem_addr(sK + (((lane >> 4) << 3) + (lane & 7)) * STRIDE + ((lane >> 3) & 1) * 8);
  const unsigned v_lane = attnc_smem_addr(sV + (lane & 15) * STRIDE + (lane >> 4) * 8);
  // A-fragment address of this lane in Q (ldmatrix.x4: rows 0-15 x cols 0-15 of an m16 tile)
  const unsigned q_addr = attnc_smem_addr(sQ + (warp * ${wr} + (lane & 15)) * STRIDE + (lane >> 4) * 8);
${qRegs ? `  unsigned qf[${mt}][${kd}][4];
  #pragma unroll
  for (int mi = 0; mi < ${mt}; ++mi)
  #pragma unroll
  for (int kk = 0; kk < ${kd}; ++kk)
    attnc_ldsm_x4(qf[mi][kk][0], qf[mi][kk][1], qf[mi][kk][2], qf[mi][kk][3], q_addr + (mi * 16 * STRIDE + kk * 16) * 2);` : '  // Q fragments are re-read from shared memory per k-step (registers go to O and S).'}

  float o[${mt}][${nd}][4];
  #pragma unroll
  for (int mi = 0; mi < ${mt}; ++mi)
  #pragma unroll
  for (int n = 0; n < ${nd}; ++n) o[mi][n][0] = o[mi][n][1] = o[mi][n][2] = o[mi][n][3] = 0.f;
  float m_i[${2 * mt}], l_i[${2 * mt}];
  #pragma unroll
  for (int i = 0; i < ${2 * mt}; ++i) { m_i[i] = ATTNC_NEG_INF; l_i[i] = 0.f; }
  int stage = 0;

  // ---- main loop over the live KV tiles ----
  while (j < n_tiles) {
    attnc_cp_wait<0>();
    __syncthreads();  // tile j visible; everyone is done with the other stage
    const int jn = next_live(j + 1);
    if (jn < n_tiles) { load_kv(jn, stage ^ 1); fill_tables(jn, stage ^ 1); }
    attnc_cp_commit();
    const int kv0 = j * BN;
    // Shared addresses as 32-bit integers: the per-fragment offsets below are
    // compile-time constants that fold into the ldmatrix immediate.
    const unsigned k_base = k_lane + stage * (BN * STRIDE * 2), v_base = v_lane + stage * (BN * STRIDE * 2);

    // S = Q K^T (raw dot products, f32)
    float s[${mt}][${nt}][4];
    #pragma unroll
    for (int mi = 0; mi < ${mt}; ++mi)
    #pragma unroll
    for (int n = 0; n < ${nt}; ++n) s[mi][n][0] = s[mi][n][1] = s[mi][n][2] = s[mi][n][3] = 0.f;
    {
      #pragma unroll
      for (int kk = 0; kk < ${kd}; ++kk) {
${qRegs ? '' : `        unsigned qf[${mt}][1][4];
        #pragma unroll
        for (int mi = 0; mi < ${mt}; ++mi)
          attnc_ldsm_x4(qf[mi][0][0], qf[mi][0][1], qf[mi][0][2], qf[mi][0][3], q_addr + (mi * 16 * STRIDE + kk * 16) * 2);`}
        #pragma unroll
        for (int np = 0; np < ${nt / 2}; ++np) {
          unsigned b0, b1, b2, b3;
          attnc_ldsm_x4(b0, b1, b2, b3, k_base + (np * 16 * STRIDE + kk * 16) * 2);
          #pragma unroll
          for (int mi = 0; mi < ${mt}; ++mi) {
            attnc_mma(s[mi][2 * np], qf[mi][${qRegs ? 'kk' : '0'}], b0, b1);
            attnc_mma(s[mi][2 * np + 1], qf[mi][${qRegs ? 'kk' : '0'}], b2, b3);
          }
        }
      }
    }

    // logits in the log2 domain; the mask only where the tile test says partial
    if (tile_partial(j)) {
${elemLoopCode(spec, true, mt, nt, wr, bn)}
    } else {
${elemLoopCode(spec, false, mt, nt, wr, bn)}
    }

${softmaxCode(mt, nt, nd)}

    // O += P V: the S accumulators of two n8 tiles are the A fragment of one k16 step
    {
      #pragma unroll
      for (int kk = 0; kk < ${bn / 16}; ++kk) {
        unsigned a[${mt}][4];
        #pragma unroll
        for (int mi = 0; mi < ${mt}; ++mi) {
          a[mi][0] = attnc_pack(s[mi][2 * kk][0], s[mi][2 * kk][1]);
          a[mi][1] = attnc_pack(s[mi][2 * kk][2], s[mi][2 * kk][3]);
          a[mi][2] = attnc_pack(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
          a[mi][3] = attnc_pack(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
        }
        #pragma unroll
        for (int dn = 0; dn < ${nd / 2}; ++dn) {
          unsigned b0, b1, b2, b3;
          attnc_ldsm_x4_t(b0, b1, b2, b3, v_base + (kk * 16 * STRIDE + dn * 16) * 2);
          #pragma unroll
          for (int mi = 0; mi < ${mt}; ++mi) {
            attnc_mma(o[mi][2 * dn], a[mi], b0, b1);
            attnc_mma(o[mi][2 * dn + 1], a[mi], b2, b3);
          }
        }
      }
    }
    j = jn;
    stage ^= 1;
  }

${epilogueCode(mt, nd, wr)}
}
`;
}

/** Logits (log2 domain) of the S accumulators s[mi][n][r], masked on partial tiles. Shared with the wgmma kernel (same fragment layout). */
export function elemLoopCode(spec: SpecCode, masked: boolean, mt: number, nt: number, wr: number, bn: number, raw = false, diagRegs = false): string {
  if (diagRegs && (mt !== 1 || wr !== 16)) throw new Error('internal: per-diagonal values in registers are laid out for one m16 tile per warp');
  const e = spec.elem(masked, bn, raw, diagRegs);
  // Raw dot products need no pass over an unmasked tile.
  if (raw && !masked) return '      // raw dot products: the scale is folded into the softmax';
  return `      #pragma unroll
      for (int mi = 0; mi < ${mt}; ++mi)
      #pragma unroll
      for (int n = 0; n < ${nt}; ++n) {
        #pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int i = 2 * mi + (r >> 1);
          const int lr = warp * ${wr} + mi * 16 + g + 8 * (r >> 1), lc = n * 8 + 2 * t4 + (r & 1);
          const int qi = q0 + lr, kvi = kv0 + lc;
          const float dotv = s[mi][n][r];
          (void)i; (void)lr; (void)lc; (void)qi; (void)kvi; (void)dotv;
${e.lines.join('\n')}
          ${masked ? maskedLogit('s[mi][n][r]', e) : `s[mi][n][r] = ${e.logit2};`}
        }
      }`;
}

export interface SoftmaxOptions {
  /**
   * O is still being accumulated by an in-flight P V (cuda-wgmma-ws.ts, overlapped loop): the factors
   * go to alpha_i[] and rescaleCode() applies them once that product is done.
   */
  deferRescale?: boolean;
  /** S holds raw dot products and the logit is a * S + c, a > 0 (SpecCode.foldedScale). */
  fold?: { a: string; c: string } | null;
  /**
   * FlashAttention-4's conditional rescale: a row's reference max moves only when the tile's max
   * passes it by more than 8 (log2 units). Any reference at least the true max - 8 gives the same
   * softmax, with P <= 2^8 (no overflow in f32, bf16 or f16), so O and l keep their scale and the
   * rescale is skipped, by warp, on all but the few tiles that raise a row's max that much.
   */
  lazyRescale?: boolean;
  /** Row max and row sum as two interleaved chains (half the dependent latency of one). */
  twoChains?: boolean;
  /**
   * The row sums are taken by the tensor cores into O's extra n8 tile (CudaTiles.rowSumMma): no sum here,
   * and `nd` counts that tile, so every rescale of O rescales the sums too.
   */
  rowSumMma?: boolean;
  /**
   * A row's first reference max is 0 where its first tile's max (log2 units) lies in [-low, high], and it then
   * moves only when a tile's max passes it by more than `high` (as lazyRescale, with that threshold). Any
   * reference r with max - high <= r gives the same softmax; with r = 0, P = 2^x needs no subtraction per element.
   * While every row of the warp has reference 0 and no logit of the tile is above `high`, the warp takes that
   * path (a vote per tile): exp2 straight from the logits, no shuffles for the row max, no rescale. It is the
   * same arithmetic as the general path with a reference of 0, so the two agree bit for bit. The window keeps
   * P within what the storage type holds at full precision (tiles.ts zeroRefWindow). Not with fold, whose FMA
   * already subtracts the reference.
   */
  zeroRef?: { low: number; high: number } | null;
  /**
   * With zeroRef: 'packed' leaves the zero reference's path and its check to the caller (cuda-wgmma-ws.ts
   * CudaTiles.packedRefCheck, which checks P once packed) and returns the general path alone, its row max taken here.
   */
  zeroRefCheck?: 'max' | 'packed';
}

/** Online softmax over the S accumulators (each row is spread over the 4 lanes of a quad); rescales O. */
export function softmaxCode(mt: number, nt: number, nd: number, o: SoftmaxOptions = {}): string {
  const { deferRescale = false, fold = null, lazyRescale = false, twoChains = false, rowSumMma = false, zeroRef = null, zeroRefCheck = 'max' } = o;
  if (fold && zeroRef) throw new Error('softmaxCode: a zero reference is for logits that do not fold into the exp2');
  const rescale = deferRescale
    ? 'alpha_i[i] = alpha;'
    : lazyRescale
      ? `if (__any_sync(0xffffffffu, alpha != 1.f)) {  // warp-uniform: the rows' references moved
        #pragma unroll
        ${scaleO(nd, 'alpha')}
      }`
      : `#pragma unroll
      ${scaleO(nd, 'alpha')}`;
  // The tile's own max (the reference joins it after): where raw dot products are in S, or the reference moves lazily.
  const tileOnly = twoChains || fold !== null || lazyRescale || zeroRef !== null;
  const rowMax = twoChains
    ? `float mx = s[mi][0][2 * h], mx1 = s[mi][0][2 * h + 1];
      #pragma unroll
      for (int n = 1; n < ${nt}; ++n) { mx = fmaxf(mx, s[mi][n][2 * h]); mx1 = fmaxf(mx1, s[mi][n][2 * h + 1]); }
      mx = fmaxf(mx, mx1);`
    : `float mx = ${tileOnly ? 'ATTNC_NEG_INF' : 'm_i[i]'};
      #pragma unroll
      for (int n = 0; n < ${nt}; ++n) mx = fmaxf(mx, fmaxf(s[mi][n][2 * h], s[mi][n][2 * h + 1]));`;
  // The row max in log2 units (fold: a * max(dot) + c, -inf for a row with nothing kept, as a > 0 is finite).
  const scaledMax = fold ? `
      mx = fmaf(mx, ${fold.a}, ${fold.c});  // the row's largest logit: a > 0` : '';
  const newMax = zeroRef
    ? `const float m_new = m_i[i] == ATTNC_NEG_INF && mx >= ${f32(-zeroRef.low)} && mx <= ${f32(zeroRef.high)} ? 0.f  // zero reference
                        : mx > m_i[i] + ${f32(zeroRef.high)} ? mx : m_i[i];  // then it moves only by more than 2^${zeroRef.high}`
    : lazyRescale
      ? 'const float m_new = mx > m_i[i] + 8.f ? mx : m_i[i];  // the reference moves only by more than 2^8'
      : `const float m_new = ${tileOnly ? 'fmaxf(m_i[i], mx)' : 'mx'};`;
  const arg = (x: string) => (fold ? `fmaf(${x}, ${fold.a}, off)` : `${x} - m_use`);
  const p = (x: string) => `attnc_ex2(${arg(x)})`;
  const sum = rowSumMma ? '' : twoChains ? `
        rs += s[mi][n][2 * h];
        rs1 += s[mi][n][2 * h + 1];` : `
        rs += s[mi][n][2 * h] + s[mi][n][2 * h + 1];`;
  const rowSum = (px: (x: string) => string) => `${rowSumMma ? '' : `float rs = 0.f${twoChains ? ', rs1 = 0.f' : ''};
      `}#pragma unroll
      for (int n = 0; n < ${nt}; ++n) {
        s[mi][n][2 * h] = ${px('s[mi][n][2 * h]')};
        s[mi][n][2 * h + 1] = ${px('s[mi][n][2 * h + 1]')};${sum}
      }${twoChains && !rowSumMma ? `
      rs += rs1;` : ''}`;
  // With a zero reference the rows' maxima over this lane's logits are taken before the vote (mx_t[]).
  const general = `    #pragma unroll
    for (int i = 0; i < ${2 * mt}; ++i) {
      const int mi = i >> 1, h = i & 1;
      ${zeroRef && zeroRefCheck === 'max' ? 'float mx = mx_t[i];' : rowMax}
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));${scaledMax}
      ${newMax}
      const float m_use = m_new == ATTNC_NEG_INF ? 0.f : m_new;  // no (-inf) - (-inf)
      const float alpha = attnc_ex2(m_i[i] - m_use);
      m_i[i] = m_new;${fold ? `
      const float off = ${fold.c === '0.0f' ? '-m_use' : `${fold.c} - m_use`};` : ''}
      ${rowSum(p)}${rowSumMma ? '' : `
      l_i[i] = l_i[i] * alpha + rs;`}
      ${rescale}
    }`;
  if (!zeroRef || zeroRefCheck === 'packed') return `    // online softmax (each row is spread over the 4 lanes of a quad)
${general}`;
  const fast = `    #pragma unroll
    for (int i = 0; i < ${2 * mt}; ++i) {
      const int mi = i >> 1, h = i & 1;
      ${rowSum((x) => `attnc_ex2(${x})`)}${rowSumMma ? '' : `
      l_i[i] += rs;`}${deferRescale ? `
      alpha_i[i] = 1.f;` : ''}
    }`;
  return `    // online softmax (each row is spread over the 4 lanes of a quad), first the zero reference's path:
    // every row of the warp at reference 0 and no logit of the tile above ${zeroRef.high}, so P = 2^x as it stands
    float mx_t[${2 * mt}];
    #pragma unroll
    for (int i = 0; i < ${2 * mt}; ++i) {
      const int mi = i >> 1, h = i & 1;
      ${rowMax}
      mx_t[i] = mx;
    }
    if (__all_sync(0xffffffffu, ${Array.from({ length: 2 * mt }, (_, i) => `mx_t[${i}] <= ${f32(zeroRef.high)} && m_i[${i}] == 0.f`).join(' && ')})) {
${indent(fast)}
    } else {
${indent(general)}
    }`;
}

/** Two more spaces on every non-empty line: code pasted one block deeper. */
export function indent(code: string, levels = 1): string {
  const pad = '  '.repeat(levels);
  return code.split('\n').map((l) => (l.length ? pad + l : l)).join('\n');
}

/** A whole number as a CUDA float literal. */
const f32 = (x: number) => `${x.toFixed(1)}f`;

/** O *= alpha_i[] per row slot (the deferred half of softmaxCode(..., true)). */
export function rescaleCode(mt: number, nd: number, lazy = false): string {
  const loop = `    #pragma unroll
    for (int i = 0; i < ${2 * mt}; ++i) {
      const int mi = i >> 1, h = i & 1;
      #pragma unroll
      ${scaleO(nd, 'alpha_i[i]')}
    }`;
  if (!lazy) return loop;
  const moved = Array.from({ length: 2 * mt }, (_, i) => `alpha_i[${i}] != 1.f`).join(' || ');
  return `    if (__any_sync(0xffffffffu, ${moved})) {  // warp-uniform: some row's reference moved (lazy rescale)
${indent(loop)}
    }`;
}

/** Row slot (mi, h) of O times `factor`. */
const scaleO = (nd: number, factor: string) =>
  `for (int n = 0; n < ${nd}; ++n) { o[mi][n][2 * h] *= ${factor}; o[mi][n][2 * h + 1] *= ${factor}; }`;

/**
 * Normalizes O, writes LSE, stages O through shared memory (sQ, row stride STRIDE) and stores 16-byte chunks.
 * The row sums are l_i's quarters (one per lane of the quad), or with rowSumMma whole in o[mi][nd].
 */
export function epilogueCode(mt: number, nd: number, wr: number, rowSumMma = false): string {
  return `  // ---- epilogue: normalize, LSE, stage O through this warp's Q rows, 16-byte stores ----
  #pragma unroll
  for (int i = 0; i < ${2 * mt}; ++i) {
    const int mi = i >> 1, h = i & 1;${rowSumMma ? `
    const float l = o[mi][${nd}][2 * h];  // the tensor cores' row sum (every lane of the quad has it)` : `
    float l = l_i[i];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);`}
    const float inv = l > 0.f ? 1.f / l : 0.f;  // fully masked row: O = 0
    const int lr = warp * ${wr} + mi * 16 + g + 8 * h;
    #pragma unroll
    for (int n = 0; n < ${nd}; ++n)
      *(unsigned*)(sQ + lr * STRIDE + n * 8 + 2 * t4) = attnc_pack(o[mi][n][2 * h] * inv, o[mi][n][2 * h + 1] * inv);
    if (t4 == 0 && row0 + lr < Nq)
      LSE[(size_t)(bb * Hq + hq) * Nq + row0 + lr] = l > 0.f ? (m_i[i] + log2f(l)) * 0.6931471805599453f : ATTNC_NEG_INF;
  }
  __syncwarp();
  unsigned short* gO = O + (size_t)(bb * Hq + hq) * Nq * HEAD_DIM;
  for (int x = lane; x < ${wr} * CHUNKS; x += 32) {
    const int r = warp * ${wr} + x / CHUNKS, c = x % CHUNKS;
    if (row0 + r < Nq)
      *(uint4*)(gO + (size_t)(row0 + r) * HEAD_DIM + c * 8) = *(const uint4*)(sQ + r * STRIDE + c * 8);
  }`;
}
