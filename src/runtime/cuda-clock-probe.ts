// A probe of the SM clock as kernels see it, for timing runs whose launches fall in two modes (bench/README.md,
// "Launches in two modes"): nvidia-smi samples every few hundred ms and need not fall on a launch, while this
// kernel runs right after one. One block per SM spins on a chain of dependent FMAs for ~100 us and reads its SM's
// cycle counter (clock64) and the GPU's nanosecond timer (%globaltimer) before and after: cycles per ns x 1000
// is the effective clock in MHz over those 100 us.

export const CLOCK_PROBE_ENTRY = 'attnc_clock_probe';

/** FMAs in the chain: ~4 cycles each, so ~200 000 cycles, ~100 us at 2 GHz (%globaltimer ticks every 32 ns to 1 us). */
export const CLOCK_PROBE_SPINS = 50_000;

export const CLOCK_PROBE_SOURCE = `
extern "C" __global__ void ${CLOCK_PROBE_ENTRY}(unsigned long long* out, int spins) {
  unsigned long long t0, t1;
  const long long c0 = clock64();
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  float x = (float)threadIdx.x;
  for (int i = 0; i < spins; ++i) x = fmaf(x, 0.9999f, 1.0f);
  const long long c1 = clock64();
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t1));
  if (threadIdx.x == 0) { out[2 * blockIdx.x] = (unsigned long long)(c1 - c0); out[2 * blockIdx.x + 1] = t1 - t0; }
  if (x == -1.0f) out[0] = 0;  // keeps the chain live; never true
}
`;

/** The effective clock in MHz from the probe's (cycles, ns) pairs: the median over its blocks (SMs). */
export function probeMhz(pairs: BigUint64Array): number {
  const mhz: number[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const cycles = Number(pairs[i]), ns = Number(pairs[i + 1]);
    if (ns > 0) mhz.push((cycles / ns) * 1000);
  }
  if (!mhz.length) throw new Error('clock probe: no block measured any time (globaltimer did not advance)');
  mhz.sort((a, b) => a - b);
  return mhz[mhz.length >> 1];
}
