// The CUDA backward's matrix products on mma.sync m16n8k16 (render/cuda-bwd.ts, the default; cuda-bwd-wgmma.ts has
// Hopper's): operands through ldmatrix from padded shared rows (STRIDE elements), f32 accumulators per warp.

/** dS (or P) in the accumulators as the A operand of a k16 step over the loop tile's columns, then one MMA per n8 tile of D. */
export function accumulateCode(acc: string, from: string, bBase: string, nd: number, steps: number): string {
  return `    #pragma unroll
    for (int kk = 0; kk < ${steps}; ++kk) {
      unsigned a[4];
      a[0] = attnc_pack(${from}[2 * kk][0], ${from}[2 * kk][1]);
      a[1] = attnc_pack(${from}[2 * kk][2], ${from}[2 * kk][3]);
      a[2] = attnc_pack(${from}[2 * kk + 1][0], ${from}[2 * kk + 1][1]);
      a[3] = attnc_pack(${from}[2 * kk + 1][2], ${from}[2 * kk + 1][3]);
      #pragma unroll
      for (int dn = 0; dn < ${nd / 2}; ++dn) {
        unsigned b0, b1, b2, b3;
        attnc_ldsm_x4_t(b0, b1, b2, b3, ${bBase} + (kk * 16 * STRIDE + dn * 16) * 2);
        attnc_mma(${acc}[2 * dn], a, b0, b1);
        attnc_mma(${acc}[2 * dn + 1], a, b2, b3);
      }
    }`;
}

/** Two products over D of the warp's 16 owned rows against the loop tile's rows: S (with `aS`, `bS`) and dP (`aP`, `bP`). */
export function twoProductsCode(aS: string, bS: string, aP: string, bP: string, kd: number, nt: number): string {
  return `    float s[NT][4], dp[NT][4];
    #pragma unroll
    for (int n = 0; n < NT; ++n) { s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f; dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.f; }
    #pragma unroll
    for (int kk = 0; kk < ${kd}; ++kk) {
      unsigned as[4], ap[4];
      attnc_ldsm_x4(as[0], as[1], as[2], as[3], ${aS} + kk * 32);
      attnc_ldsm_x4(ap[0], ap[1], ap[2], ap[3], ${aP} + kk * 32);
      #pragma unroll
      for (int np = 0; np < ${nt / 2}; ++np) {
        unsigned b0, b1, b2, b3;
        attnc_ldsm_x4(b0, b1, b2, b3, ${bS} + (np * 16 * STRIDE + kk * 16) * 2);
        attnc_mma(s[2 * np], as, b0, b1);
        attnc_mma(s[2 * np + 1], as, b2, b3);
        attnc_ldsm_x4(b0, b1, b2, b3, ${bP} + (np * 16 * STRIDE + kk * 16) * 2);
        attnc_mma(dp[2 * np], ap, b0, b1);
        attnc_mma(dp[2 * np + 1], ap, b2, b3);
      }
    }`;
}

/** ldmatrix lane addresses: A (16 rows x 16 of D, row-major), B not transposed (rows are n), B transposed (rows are k). */
export const LANE = {
  a: (base: string) => `attnc_smem_addr(${base} + (warp * 16 + (lane & 15)) * STRIDE + (lane >> 4) * 8)`,
  b: (base: string) => `attnc_smem_addr(${base} + (((lane >> 4) << 3) + (lane & 7)) * STRIDE + ((lane >> 3) & 1) * 8)`,
  bt: (base: string) => `attnc_smem_addr(${base} + (lane & 15) * STRIDE + (lane >> 4) * 8)`,
};
