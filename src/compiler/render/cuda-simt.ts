// The f32 kernel skeleton: plain f32 FMA on CUDA cores (tf32 tensor cores
// would miss the 1e-4 tolerance). A block owns BM = 32 query rows, four
// threads per row (a quad). Per KV tile of BN = 32 keys (cp.async, double
// buffered): each thread computes 8 of the row's 32 dot products, the
// transform and online softmax as in the tensor-core kernel, writes P to
// shared memory, and accumulates D/4 output columns (float4 chunks t4,
// t4 + 4, ...) of P V. Same tile classification and hoisting.
import type { CudaTiles } from '../schedule/cuda-tiles.ts';
import { kvStaging, maskedLogit, type SpecCode } from './cuda-spec.ts';

export function renderSimtKernel(entry: string, spec: SpecCode, t: CudaTiles, headDim: number, sig: string): string {
  const { bm, bn, threads, stride } = t;
  const nc = bn / 4, nk = headDim / 16;
  const elemLoop = (masked: boolean) => {
    const e = spec.elem(masked, bn);
    return `      #pragma unroll
      for (int n = 0; n < ${nc}; ++n) {
        const int i = 0, lc = 4 * n + t4;
        const int qi = q0 + lr, kvi = kv0 + lc;
        const float dotv = s[n];
        (void)i; (void)lc; (void)qi; (void)kvi; (void)dotv;
${e.lines.join('\n')}
        ${masked ? maskedLogit('s[n]', e) : `s[n] = ${e.logit2};`}
      }`;
  };
  return `extern "C" __global__ void __launch_bounds__(${threads}, 1) ${entry}(${sig}) {
  constexpr int HEAD_DIM = ${headDim}, BM = ${bm}, BN = ${bn}, STRIDE = ${stride}, NTHREADS = ${threads};
  constexpr int CHUNKS = HEAD_DIM / 4;  // 16-byte chunks per row
  constexpr int PSTRIDE = BN + 1;
  extern __shared__ __align__(16) unsigned char attnc_smem_raw[];  // one type in every kernel: a TU may hold several
  float* const attnc_smem = reinterpret_cast<float*>(attnc_smem_raw);
  float* sQ = attnc_smem;              // [BM][STRIDE]
  float* sK = sQ + BM * STRIDE;        // [2][BN][STRIDE]
  float* sV = sK + 2 * BN * STRIDE;    // [2][BN][STRIDE]
  float* sP = sV + 2 * BN * STRIDE;    // [BM][BN + 1]
${spec.tableDecls(bm, bn).join('\n')}
  const int tid = threadIdx.x, lr = tid >> 2, t4 = tid & 3;
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int hq = blockIdx.y, bb = blockIdx.z, hk = hq / (Hq / Hkv);
  const int row0 = m_block * BM;
  const int q0 = row0 + (Nk - Nq);
${kvStaging(spec, 'float', 4, bm, bn, threads)}
  // ---- values per query row (one row per thread) ----
${spec.rowDecls(1).join('\n')}
  {
    const int i = 0;
    (void)i;
${spec.rowFill('q0 + lr').join('\n')}
  }

  // ---- prologue ----
  for (int x = tid; x < BM * CHUNKS; x += NTHREADS) {
    const int r = x / CHUNKS, c = x % CHUNKS;
    const bool ok = row0 + r < Nq;
    attnc_cp_async16(attnc_smem_addr(sQ + r * STRIDE + c * 4), gQ + (ok ? (size_t)(row0 + r) * HEAD_DIM + c * 4 : 0), ok);
  }
  attnc_cp_commit();
  int j = next_live(0);
  if (j < n_tiles) { load_kv(j, 0); fill_tables(j, 0); }
  attnc_cp_commit();

  float4 acc[${nk}];
  #pragma unroll
  for (int k = 0; k < ${nk}; ++k) { acc[k].x = 0.f; acc[k].y = 0.f; acc[k].z = 0.f; acc[k].w = 0.f; }
  float m_i = ATTNC_NEG_INF, l_i = 0.f;
  int stage = 0;

  while (j < n_tiles) {
    attnc_cp_wait<0>();
    __syncthreads();
    const int jn = next_live(j + 1);
    if (jn < n_tiles) { load_kv(jn, stage ^ 1); fill_tables(jn, stage ^ 1); }
    attnc_cp_commit();
    const int kv0 = j * BN;
    const float* sKs = sK + stage * BN * STRIDE;
    const float* sVs = sV + stage * BN * STRIDE;

    float s[${nc}];
    #pragma unroll
    for (int n = 0; n < ${nc}; ++n) s[n] = 0.f;
    #pragma unroll 2
    for (int d = 0; d < CHUNKS; ++d) {
      const float4 q = *(const float4*)(sQ + lr * STRIDE + 4 * d);
      #pragma unroll
      for (int n = 0; n < ${nc}; ++n) {
        const float4 k = *(const float4*)(sKs + (4 * n + t4) * STRIDE + 4 * d);
        s[n] = fmaf(q.x, k.x, fmaf(q.y, k.y, fmaf(q.z, k.z, fmaf(q.w, k.w, s[n]))));
      }
    }

    if (tile_partial(j)) {
${elemLoop(true)}
    } else {
${elemLoop(false)}
    }

    float mx = m_i;
    #pragma unroll
    for (int n = 0; n < ${nc}; ++n) mx = fmaxf(mx, s[n]);
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_use = mx == ATTNC_NEG_INF ? 0.f : mx;
    const float alpha = exp2f(m_i - m_use);
    m_i = mx;
    float rs = 0.f;
    #pragma unroll
    for (int n = 0; n < ${nc}; ++n) {
      const float p = exp2f(s[n] - m_use);
      rs += p;
      sP[lr * PSTRIDE + 4 * n + t4] = p;
    }
    l_i = l_i * alpha + rs;
    #pragma unroll
    for (int k = 0; k < ${nk}; ++k) { acc[k].x *= alpha; acc[k].y *= alpha; acc[k].z *= alpha; acc[k].w *= alpha; }
    __syncwarp();  // P of a row is written and read by its own quad
    #pragma unroll 2
    for (int c = 0; c < BN; ++c) {
      const float p = sP[lr * PSTRIDE + c];
      #pragma unroll
      for (int k = 0; k < ${nk}; ++k) {
        const float4 v = *(const float4*)(sVs + c * STRIDE + 4 * (t4 + 4 * k));
        acc[k].x = fmaf(p, v.x, acc[k].x); acc[k].y = fmaf(p, v.y, acc[k].y);
        acc[k].z = fmaf(p, v.z, acc[k].z); acc[k].w = fmaf(p, v.w, acc[k].w);
      }
    }
    j = jn;
    stage ^= 1;
  }

  // ---- epilogue ----
  float l = l_i;
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  const float inv = l > 0.f ? 1.f / l : 0.f;
  if (row0 + lr < Nq) {
    float* gO = O + ((size_t)(bb * Hq + hq) * Nq + row0 + lr) * HEAD_DIM;
    #pragma unroll
    for (int k = 0; k < ${nk}; ++k)
    {
      float4 r; r.x = acc[k].x * inv; r.y = acc[k].y * inv; r.z = acc[k].z * inv; r.w = acc[k].w * inv;
      *(float4*)(gO + 4 * (t4 + 4 * k)) = r;
    }
    if (t4 == 0) LSE[(size_t)(bb * Hq + hq) * Nq + row0 + lr] = l > 0.f ? (m_i + log2f(l)) * 0.6931471805599453f : ATTNC_NEG_INF;
  }
}
`;
}
