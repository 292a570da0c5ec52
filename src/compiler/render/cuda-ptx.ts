// Inline-PTX wrappers shared by the CUDA kernels. Written without any
// #include so that NVRTC compiles the kernels with no CUDA headers at all.

export const PTX_COMMON = `// ---- small helpers (no CUDA headers needed) ----
#define ATTNC_NEG_INF __int_as_float(0xff800000)
__device__ __forceinline__ int attnc_clampi(int x, int n) { return min(max(x, 0), n - 1); }
__device__ __forceinline__ unsigned attnc_smem_addr(const void* p) {
  unsigned r;
  asm volatile("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
  return r;
}
// 16-byte global->shared copy; src_bytes = 0 zero-fills (out-of-range rows).
__device__ __forceinline__ void attnc_cp_async16(unsigned dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
// The same, at immediate byte offsets from both addresses, always in range (no address arithmetic in the copy).
template <int DST_OFF, int SRC_OFF> __device__ __forceinline__ void attnc_cp_async16_at(unsigned dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0+%2], [%1+%3], 16;" :: "r"(dst), "l"(src), "n"(DST_OFF), "n"(SRC_OFF) : "memory");
}
__device__ __forceinline__ void attnc_cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N> __device__ __forceinline__ void attnc_cp_wait() { asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory"); }
__device__ __forceinline__ float attnc_ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
`;

/** The larger of each half of two packed pairs, a NaN half giving way to the other (CudaTiles.packedRefCheck). */
export function ptxMaxX2(dtype: 'f16' | 'bf16'): string {
  return `__device__ __forceinline__ unsigned attnc_max_x2(unsigned x, unsigned y) {
  unsigned r;
  asm("max.${dtype}x2 %0, %1, %2;" : "=r"(r) : "r"(x), "r"(y));
  return r;
}
`;
}

export function ptxMma(dtype: 'f16' | 'bf16'): string {
  return `// ---- tensor-core wrappers (${dtype}) ----
__device__ __forceinline__ void attnc_ldsm_x4(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void attnc_ldsm_x4_t(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
// D += A * B, m16n8k16, ${dtype} inputs, f32 accumulators.
__device__ __forceinline__ void attnc_mma(float* c, const unsigned* a, unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.${dtype}.${dtype}.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// Two f32 -> packed ${dtype}x2 (lo in the low half), round to nearest even.
__device__ __forceinline__ unsigned attnc_pack(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.${dtype}x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
`;
}

/**
 * Hopper warpgroup MMA wrappers (sm_90a only): `wgmma.mma_async` with A and B
 * from shared memory for S = Q K^T (m64 x n`sN` x k16), and A from registers
 * for O += P V (m64 x n64 x k16, V read N-major, i.e. transposed). Shared
 * operands use 128-byte-swizzled atoms described by 64-bit matrix descriptors.
 */
/** The wgmma helpers, with S = Q K^T (attnc_wgmma_ss<N>) for each tile width N that a kernel of the source uses. */
export function ptxWgmma(dtype: 'f16' | 'bf16', widths: readonly number[], rowSum = false, pingpong = false, mnMajorSS = false): string {
  const regs = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `%${from + i}`).join(', ');
  const outs = (n: number) => Array.from({ length: n }, (_, i) => `"+f"(d[${i}])`).join(', ');
  const ss = (sN: number) => {
    const dS = sN / 2;
    return `// d[64 x ${sN}] = (accumulate ? d : 0) + A[64 x 16] B[${sN} x 16]^T; A and B K-major in shared memory.
template <> __device__ __forceinline__ void attnc_wgmma_ss<${sN}>(float* d, unsigned long long a, unsigned long long b, int accumulate) {
  asm volatile("{\\n.reg .pred p;\\nsetp.ne.b32 p, %${dS + 2}, 0;\\n"
               "wgmma.mma_async.sync.aligned.m64n${sN}k16.f32.${dtype}.${dtype} {${regs(dS)}}, %${dS}, %${dS + 1}, p, 1, 1, 0, 0;\\n}\\n"
               : ${outs(dS)}
               : "l"(a), "l"(b), "r"(accumulate));
}`;
  };
  return `// ---- warpgroup MMA (sm_90a, ${dtype}) ----
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "this kernel uses wgmma: build it for sm_90a (or generate it with --arch sm_80)"
#endif
__device__ __forceinline__ void attnc_wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void attnc_wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void attnc_wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory"); }
// Shared memory written by cp.async is read next by the tensor cores (async proxy).
__device__ __forceinline__ void attnc_fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }
// Every cp.async of this thread has landed, committed to a group or not (the mbarrier path commits none).
__device__ __forceinline__ void attnc_cp_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }
// Shared-memory barriers (mbarrier): arrivals by every thread, waits by phase parity.
__device__ __forceinline__ void attnc_mbar_init(unsigned bar, unsigned count) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(bar), "r"(count) : "memory"); }
__device__ __forceinline__ void attnc_mbar_arrive(unsigned bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(bar) : "memory"); }
// The barrier's current phase also waits for this thread's earlier cp.async copies to land.
__device__ __forceinline__ void attnc_mbar_track_cp(unsigned bar) { asm volatile("cp.async.mbarrier.arrive.shared::cta.b64 [%0];" :: "r"(bar) : "memory"); }
__device__ __forceinline__ void attnc_mbar_wait(unsigned bar, unsigned parity) {
  asm volatile("{\\n.reg .pred done;\\nLAB_WAIT:\\nmbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\\n@!done bra LAB_WAIT;\\n}\\n" :: "r"(bar), "r"(parity) : "memory");
}
// Register budget of this warpgroup (warp-specialized kernel): the producer gives registers back, the consumers take them.
template <int R> __device__ __forceinline__ void attnc_setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" :: "n"(R)); }
template <int R> __device__ __forceinline__ void attnc_setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" :: "n"(R)); }
// Named barrier id among n threads (whole warps): one role of a warp-specialized block.
__device__ __forceinline__ void attnc_bar_sync(int id, int n) { asm volatile("bar.sync %0, %1;" :: "r"(id), "r"(n) : "memory"); }${pingpong ? `
// Arrive at named barrier id without waiting (the other side of a bar.sync among n threads).
__device__ __forceinline__ void attnc_bar_arrive(int id, int n) { asm volatile("bar.arrive %0, %1;" :: "r"(id), "r"(n) : "memory"); }` : ''}
// Matrix descriptor: start address, leading and stride byte offsets (all >> 4), 128-byte swizzle (or none).
__device__ __forceinline__ unsigned long long attnc_wg_desc(unsigned addr, unsigned lbo, unsigned sbo, bool swizzle128 = true) {
  return (unsigned long long)((addr & 0x3FFFFu) >> 4) | ((unsigned long long)(lbo >> 4) << 16) |
         ((unsigned long long)(sbo >> 4) << 32) | (swizzle128 ? 1ull << 62 : 0ull);
}
template <int N> __device__ void attnc_wgmma_ss(float* d, unsigned long long a, unsigned long long b, int accumulate);
${[...new Set(widths)].map(ss).join('\n')}${mnMajorSS ? `
// d[64 x 64] = (accumulate ? d : 0) + A[64 x 16] B[16 x 64]; A and B MN-major (transposed) in shared memory.
__device__ __forceinline__ void attnc_wgmma_ss_t(float* d, unsigned long long a, unsigned long long b, int accumulate) {
  asm volatile("{\\n.reg .pred p;\\nsetp.ne.b32 p, %34, 0;\\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f32.${dtype}.${dtype} {${regs(32)}}, %32, %33, p, 1, 1, 1, 1;\\n}\\n"
               : ${outs(32)}
               : "l"(a), "l"(b), "r"(accumulate));
}` : ''}
// d[64 x 64] += A[64 x 16] (registers, mma.sync A-fragment layout per warp) B[16 x 64]; B N-major in shared memory.
__device__ __forceinline__ void attnc_wgmma_rs(float* d, const unsigned* a, unsigned long long b) {
  asm volatile("{\\n.reg .pred p;\\nsetp.ne.b32 p, %37, 0;\\n"
               "wgmma.mma_async.sync.aligned.m64n64k16.f32.${dtype}.${dtype} {${regs(32)}}, {${regs(4, 32)}}, %36, p, 1, 1, 1;\\n}\\n"
               : ${outs(32)}
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}
${rowSum ? `__device__ __forceinline__ unsigned attnc_ones_x2() { return ${dtype === 'bf16' ? '0x3F803F80u' : '0x3C003C00u'}; }  // two ${dtype} ones
// d[64 x 8] += A[64 x 16] (registers) B[16 x 8] with B all ones (no swizzle): every column gets each row's sum of A.
__device__ __forceinline__ void attnc_wgmma_rs_ones(float* d, const unsigned* a, unsigned long long ones) {
  asm volatile("{\\n.reg .pred p;\\nsetp.ne.b32 p, %9, 0;\\n"
               "wgmma.mma_async.sync.aligned.m64n8k16.f32.${dtype}.${dtype} {%0, %1, %2, %3}, {%4, %5, %6, %7}, %8, p, 1, 1, 0;\\n}\\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(ones), "r"(1));
}
` : ''}`;
}
