// attnc_ex2_fma (src/compiler/render/cuda-ptx.ts): 2^x by a polynomial on the FMA pipe, its exact generated
// source compiled for the host. Its error against float64 over the range the softmax feeds it and beyond, per
// storage type: within the polynomial's bound (far below P's rounding), 0 at and below -125 (masked logits are
// -inf), NaN kept. No GPU needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exp2FmaHelper } from '../../src/compiler/render/cuda-ptx.ts';

const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('tests/cuda/exp2-fma.test.ts: skipped: no host C++ compiler (g++, c++, clang++)');
const work = mkdtempSync(join(tmpdir(), 'attnc-exp2-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const harness = (dtype: 'bf16' | 'f16') => `#include <cmath>
#include <cstdio>
#include <cstring>
#define __device__
#define __forceinline__ inline
static inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
static inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, 4); return x; }
using std::fmaf;
${exp2FmaHelper(dtype)}
int main() {
  double worst = 0, worstAt = 0;
  long n = 0, zeros = 0, wrongZeros = 0;
  for (long i = -130000 * 64; i <= 40000 * 64; ++i) {  // x in [-130, 40] every 1/64000
    const float x = (float)(i / 64000.0);
    const float r = attnc_ex2_fma(x);
    if (x < -125.f) { if (r != 0.f) ++wrongZeros; else ++zeros; continue; }
    const double e = std::fabs((double)r / std::exp2((double)x) - 1);
    if (e > worst) { worst = e; worstAt = x; }
    ++n;
  }
  const float inf = INFINITY;
  std::printf("%.3e %.6f %ld %ld %ld %d %d %.9g\\n", worst, worstAt, n, zeros, wrongZeros,
              attnc_ex2_fma(-inf) == 0.f, std::isnan(attnc_ex2_fma(NAN)), attnc_ex2_fma(0.f));
  return 0;
}
`;

describe.skipIf(!cxx)('exp2 on the FMA pipe, run on the host', () => {
  // The polynomials' bounds (cuda-ptx.ts EXP2_POLY), against P's half ulp: bf16 2^-9, f16 2^-12.
  for (const [dtype, bound, halfUlp] of [['bf16', 7.6e-5, 2 ** -9], ['f16', 2.8e-6, 2 ** -12]] as const) {
    it(`${dtype}: relative error within ${bound} on [-125, 40], 0 below, NaN kept`, () => {
      const src = join(work, `${dtype}.cpp`), bin = join(work, dtype);
      writeFileSync(src, harness(dtype));
      execFileSync(cxx!, ['-O2', '-std=c++17', '-ffp-contract=off', '-o', bin, src]);
      const [worst, at, n, zeros, wrongZeros, infZero, nanKept, atZero] = execFileSync(bin, { encoding: 'utf8' }).trim().split(' ').map(Number);
      console.log(`${dtype}: worst relative error ${worst} at x = ${at} over ${n} points`);
      expect(n).toBeGreaterThan(10_000_000);
      expect(worst, `worst relative error (at x = ${at})`).toBeLessThanOrEqual(bound);
      expect(worst).toBeLessThan(halfUlp / 10);
      expect([zeros, wrongZeros, infZero, nanKept]).toEqual([5 * 64000, 0, 1, 1]);
      expect(Math.abs(atZero - 1)).toBeLessThanOrEqual(bound);
    }, 120_000);
  }
});
