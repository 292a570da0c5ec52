// The CUDA backward's matrix products on Hopper's warpgroup tensor cores (tuning `wgmma`, render/cuda-bwd.ts;
// sm_90a only, f16/bf16, head dims 64 and 128). Each warpgroup of a launch's block (one, or two with `two-wg`) owns
// 64 rows, 16 per warp, exactly as in the mma.sync kernels, because a warp's wgmma accumulator fragment is the
// mma.sync one. So the element step, the tile tests and the epilogue stay as they are; only the products change, to
// the forward kernel's two patterns (cuda-wgmma.ts):
//   dQ launch     S = Q K^T, dP = dO V^T    wgmma m64n64k16, both operands from shared memory (K-major)
//                 dQ += dS K                wgmma m64n64k16 per 64 columns of D, dS from registers, K read N-major
//   dK/dV launch  S^T = K Q^T, dP^T = V dO^T   m64nQTk16 from shared memory
//                 dV += P^T dO, dK += dS^T Q   m64n64k16, P^T and dS^T from registers, dO and Q read N-major
//                 (fused-dq) dQ += dS K       mma.sync, or with `wgmma-dq` m64n64k16 with dS^T and K both read
//                                             MN-major from shared memory (cuda-bwd-fused.ts)
// Tiles live in shared memory as the forward's 128-byte-swizzled atoms ([D / 64][rows][64], chunk c of row r at
// c ^ (r % 8)), which serve both K-major and N-major reads; cp.async fills them, and each thread fences its copies
// into the async proxy before the block barrier that precedes the products.

/** Element offset of 16-byte chunk `c` of row `r` in a swizzled [D / 64][rows][64] tile. */
export const swizzledChunk = (rows: number | string, r: string, c: string) => `((${c}) >> 3) * (${rows} * 64) + (${r}) * 64 + ((((${c}) & 7) ^ ((${r}) & 7)) << 3)`;

/**
 * Element offset of chunk `c` of row `r` in a swizzled tile of `rows` rows: [HEAD_DIM / 64][rows][64] up to 64 rows;
 * a taller one (the two-warpgroup dK/dV block's keys) is 64-row blocks of that layout, one per warpgroup, so that
 * each warpgroup's operand is a 64-row tile of its own.
 */
export function tileChunk(rows: number, r: string, c: string): string {
  return rows > 64 ? `((${r}) >> 6) * (64 * HEAD_DIM) + ${swizzledChunk(64, `(${r}) & 63`, c)}` : swizzledChunk(rows, r, c);
}

/**
 * The tiles of the rows a block owns (the dQ launch's query rows, the dK/dV launch's keys), in tileChunk's layout:
 * their layout comment, and with two warpgroups the lines and operand base by which each reads its own 64 rows.
 */
export function ownedRows(two: boolean, what: 'rows' | 'keys', rowsConst: string): { layout: string; decl: string[]; base: (tile: string) => string } {
  if (!two) return { layout: `[HEAD_DIM / 64][${rowsConst}][64], swizzled`, decl: [], base: (tile) => tile };
  return {
    layout: `[2][HEAD_DIM / 64][64][64], swizzled: a warpgroup's 64 ${what} a block`,
    decl: [`  // each warpgroup's products read its own 64 ${what}`, `  const int wg_${what} = (warp >> 2) * 64 * HEAD_DIM;`],
    base: (tile) => `${tile} + wg_${what}`,
  };
}

/** Whether the wgmma products apply at a head dim (whole 64-column atoms); elsewhere the launches stay on mma.sync. */
export function wgmmaBackwardFits(headDim: number): boolean {
  return headDim === 64 || headDim === 128;
}

/** The dynamic shared memory base, rounded up to 1 KiB (swizzle atoms must start there; 1 KiB of slack is allocated). */
export const WG_SMEM_BASE = `  extern __shared__ __align__(16) unsigned char attnc_smem_raw[];
  unsigned short* const attnc_smem = reinterpret_cast<unsigned short*>(attnc_smem_raw + ((1024u - (attnc_smem_addr(attnc_smem_raw) & 1023u)) & 1023u));`;

/** Descriptors of a tile read K-major (as A, or as B of S = A B^T) and N-major (as B of acc += A B). */
export function wgDescs(name: string, base: string, nMajor: boolean, kMajor: boolean): string {
  const out: string[] = [];
  if (kMajor) out.push(`const unsigned long long ${name}_k = attnc_wg_desc(attnc_smem_addr(${base}), 16, 1024);`);
  if (nMajor) out.push(`const unsigned long long ${name}_n = attnc_wg_desc(attnc_smem_addr(${base}), 1024, 1024);`);
  return out.map((l) => `  ${l}`).join('\n');
}

/**
 * Two products over D of the warpgroup's 64 rows (A tiles `aS`, `aP`, 64 rows) against a loop tile of `bRows` rows
 * (B tiles `bS`, `bP`, offset by `st16`): S and dP, f32, issued together and waited for. Accumulators s[NT][4], dp[NT][4].
 * `split` (tuning overlap): S and dP in two commit groups, and only S waited for; dP's product runs on.
 */
export function wgTwoProducts(aS: string, bS: string, aP: string, bP: string, bRows: string, st16: string, split = false): string {
  const a = (d: string) => `${d} + ((kk >> 2) * (64 * 128) + (kk & 3) * 32) / 16`;
  const b = (d: string) => `${d} + ${st16} + ((kk >> 2) * (${bRows} * 128) + (kk & 3) * 32) / 16`;
  if (split) {
    return `    // S, then dP, on the warpgroup's tensor cores (raw dot products, f32), in two commit groups: S is waited for,
    // dP's product runs on beside p's element step
    float s[NT][4], dp[NT][4];
    attnc_wg_fence();
    #pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk) attnc_wgmma_ss<${bRows}>(&s[0][0], ${a(aS)}, ${b(bS)}, kk > 0);
    attnc_wg_commit();
    #pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk) attnc_wgmma_ss<${bRows}>(&dp[0][0], ${a(aP)}, ${b(bP)}, kk > 0);
    attnc_wg_commit();
    attnc_wg_wait<1>();  // S landed`;
  }
  return `    // S and dP on the warpgroup's tensor cores (raw dot products, f32): k16 steps walk 32 bytes along an atom row
    float s[NT][4], dp[NT][4];
    attnc_wg_fence();
    #pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk) {
      attnc_wgmma_ss<${bRows}>(&s[0][0], ${a(aS)}, ${b(bS)}, kk > 0);
      attnc_wgmma_ss<${bRows}>(&dp[0][0], ${a(aP)}, ${b(bP)}, kk > 0);
    }
    attnc_wg_commit();
    attnc_wg_wait<0>();`;
}

/**
 * acc[D / 8][4] += F B for each (F, B) of `pairs`: F the accumulators `from` (the loop tile's columns, packed to A
 * fragments, k16 steps of `kRows` rows) and B a loop tile read N-major (descriptor `bN` + `st16`), per 64 columns of D.
 * Committed and waited for; with `wait` false only committed (tuning overlap: it runs on beside the next step).
 */
export function wgAccumulate(pairs: Array<{ acc: string; from: string; bN: string }>, kRows: string, steps: number, st16: string, wait = true): string {
  const pack = pairs.map(({ from }) => `      a_${from}[kk][0] = attnc_pack(${from}[2 * kk][0], ${from}[2 * kk][1]);
      a_${from}[kk][1] = attnc_pack(${from}[2 * kk][2], ${from}[2 * kk][3]);
      a_${from}[kk][2] = attnc_pack(${from}[2 * kk + 1][0], ${from}[2 * kk + 1][1]);
      a_${from}[kk][3] = attnc_pack(${from}[2 * kk + 1][2], ${from}[2 * kk + 1][3]);`).join('\n');
  const issue = pairs.map(({ acc, from, bN }) =>
    `        attnc_wgmma_rs(&${acc}[8 * h][0], a_${from}[kk], ${bN} + ${st16} + (h * (${kRows} * 128) + kk * 2048) / 16);`).join('\n');
  return `    // ${pairs.map((x) => `${x.acc} += ${x.from} ${x.bN.replace(/_n$/, '')}`).join(', ')}: the accumulators packed as A fragments (all before
    // the fence, so no register the products read changes under them); B rows kk*16.. are two 8-row groups (1 KiB apart)
    unsigned ${pairs.map(({ from }) => `a_${from}[${steps}][4]`).join(', ')};
    #pragma unroll
    for (int kk = 0; kk < ${steps}; ++kk) {
${pack}
    }
    attnc_wg_fence();
    #pragma unroll
    for (int kk = 0; kk < ${steps}; ++kk) {
      #pragma unroll
      for (int h = 0; h < HEAD_DIM / 64; ++h) {
${issue}
      }
    }
    attnc_wg_commit();${wait ? `
    attnc_wg_wait<0>();  // the tile's stage is read before the next barrier frees it` : '  // not waited for here: it runs on'}`;
}
