"""Throughput of the exponentials a softmax can use, on the GPU machine (cupy):

    python3 bench/mufu-probe.py [--json out.json]

At D = 64 a flash-attention tile spends about as long in ex2 (the SFU, 16 results per clock per SM on
Hopper) as in its two products, so what an exponential costs decides whether packed forms pay:
  f32     ex2.approx.ftz.f32, one value per instruction (what the kernels use now)
  f16x2   ex2.approx.f16x2, two values per instruction
  bf16x2  ex2.approx.ftz.bf16x2, two values per instruction (sm_90)
  poly3   2^x on the FMA pipe: round, a degree-3 polynomial, the exponent added as an integer
Each thread runs 8 independent chains x <- 2^(-x) (values stay near 0.64) so the unit, not latency,
limits; the figure is exponentials per clock per SM at the clock nvidia-smi reports while it runs.
"""
import argparse
import json
import subprocess

import cupy as cp

SRC = r'''
extern "C" __device__ __forceinline__ float e_f32(float x) { float y; asm volatile("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(-x)); return y; }
extern "C" __device__ __forceinline__ unsigned e_f16x2(unsigned x) {
  unsigned y; asm volatile("{ .reg .b32 n; xor.b32 n, %1, 0x80008000; ex2.approx.f16x2 %0, n; }" : "=r"(y) : "r"(x)); return y; }
extern "C" __device__ __forceinline__ unsigned e_bf16x2(unsigned x) {
  unsigned y; asm volatile("{ .reg .b32 n; xor.b32 n, %1, 0x80008000; ex2.approx.ftz.bf16x2 %0, n; }" : "=r"(y) : "r"(x)); return y; }
extern "C" __device__ __forceinline__ float e_poly3(float x) {
  const float v = -x;
  const float r = v + 12582912.f;             // round to an integer in the low mantissa bits (|v| < 2^22)
  const float j = r - 12582912.f, f = v - j;  // f in [-0.5, 0.5]
  float p = fmaf(fmaf(fmaf(0.0555041f, f, 0.2402265f), f, 0.6931472f), f, 1.0f);
  return __int_as_float(__float_as_int(p) + (__float_as_int(r) << 23));
}
#define CHAINS 8
#define SCALAR(NAME, FN) \
extern "C" __global__ void NAME(float* out, int iters) { \
  float x[CHAINS]; \
  for (int c = 0; c < CHAINS; ++c) x[c] = 0.5f + 0.01f * c + 1e-6f * threadIdx.x; \
  for (int i = 0; i < iters; ++i) \
    _Pragma("unroll") for (int c = 0; c < CHAINS; ++c) x[c] = FN(x[c]); \
  float s = 0.f; for (int c = 0; c < CHAINS; ++c) s += x[c]; \
  out[blockIdx.x * blockDim.x + threadIdx.x] = s; \
}
SCALAR(k_f32, e_f32)
SCALAR(k_poly3, e_poly3)
#define PACKED(NAME, FN, ONE) \
extern "C" __global__ void NAME(float* out, int iters) { \
  unsigned x[CHAINS]; \
  for (int c = 0; c < CHAINS; ++c) x[c] = ONE + c + (threadIdx.x & 7); \
  for (int i = 0; i < iters; ++i) \
    _Pragma("unroll") for (int c = 0; c < CHAINS; ++c) x[c] = FN(x[c]); \
  unsigned s = 0; for (int c = 0; c < CHAINS; ++c) s ^= x[c]; \
  out[blockIdx.x * blockDim.x + threadIdx.x] = (float)s; \
}
PACKED(k_f16x2, e_f16x2, 0x38003800u)
PACKED(k_bf16x2, e_bf16x2, 0x3f003f00u)
'''

KINDS = [('f32', 1), ('f16x2', 2), ('bf16x2', 2), ('poly3', 1)]


def sm_clock_mhz():
    out = subprocess.run(['nvidia-smi', '--query-gpu=clocks.sm', '--format=csv,noheader,nounits'], capture_output=True, text=True)
    return float(out.stdout.split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--json')
    ap.add_argument('--iters', type=int, default=4096)
    a = ap.parse_args()
    mod = cp.RawModule(code=SRC, options=('-std=c++17',))
    dev = cp.cuda.Device(0)
    sms = dev.attributes['MultiProcessorCount']
    name = cp.cuda.runtime.getDeviceProperties(0)['name'].decode()
    blocks, threads = sms * 8, 256
    out = cp.empty(blocks * threads, dtype=cp.float32)
    rows = []
    print(f'{name}, {sms} SMs: exponentials per clock per SM (8 chains a thread, {blocks} x {threads} threads, {a.iters} steps)')
    for kind, per_instr in KINDS:
        k = mod.get_function(f'k_{kind}')
        for _ in range(3):
            k((blocks,), (threads,), (out, cp.int32(a.iters)))
        cp.cuda.runtime.deviceSynchronize()
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        times = []
        for _ in range(5):
            start.record()
            k((blocks,), (threads,), (out, cp.int32(a.iters)))
            stop.record()
            stop.synchronize()
            times.append(cp.cuda.get_elapsed_time(start, stop) * 1e-3)
        mhz = sm_clock_mhz()
        t = sorted(times)[len(times) // 2]
        values = blocks * threads * a.iters * 8 * per_instr
        per_clk_sm = values / t / (mhz * 1e6) / sms
        rows.append({'kind': kind, 'values_per_instr': per_instr, 'seconds': t, 'sm_mhz': mhz, 'values_per_clock_per_sm': per_clk_sm,
                     'finite': bool(cp.isfinite(out).all())})
        print(f'  {kind:7s} {per_clk_sm:7.1f} values/clk/SM   {values / t / 1e12:6.2f} T/s   ({t * 1e3:.2f} ms at {mhz:.0f} MHz)')
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'gpu': name, 'sms': sms, 'rows': rows}, f, indent=1)


if __name__ == '__main__':
    main()
