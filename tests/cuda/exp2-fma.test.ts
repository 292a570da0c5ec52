// attnc_ex2_fma (src/compiler/render/lang-cuda.ts), the exp2 that a kernel may run on the FMA pipe instead
// of the special-function unit: its exact CUDA source, compiled for the CPU with a host compiler (the bit
// casts and fmaf behave the same there), against exp2 in double over the softmax's range of exponents.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EX2_FMA } from '../../src/compiler/render/lang-cuda.ts';

const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('tests/cuda/exp2-fma.test.ts: skipped: no host C++ compiler (g++, c++, clang++)');
const work = mkdtempSync(join(tmpdir(), 'attnc-ex2-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const HARNESS = `#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdint>
#define __device__
#define __forceinline__ inline
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
using std::fmaf;
${EX2_FMA}
int main() {
  // Every f32 in [-1, 0] that is a multiple of 2^-20, and then x - k for k = 1..125: exponents of whole tiles.
  double worstRel = 0, worstX = 0;
  for (int k = 0; k <= 125; ++k)
    for (int i = 0; i <= (1 << 20); ++i) {
      const float x = -(float)i / (float)(1 << 20) - (float)k;
      const double want = std::exp2((double)x), got = attnc_ex2_fma(x);
      const double rel = std::fabs(got - want) / want;
      if (rel > worstRel) { worstRel = rel; worstX = x; }
    }
  // Below -126.5 the result is 0, as ex2.approx.ftz flushes what would be subnormal.
  double worstTinyAbs = 0;
  for (float x = -126.5f; x > -200.f; x -= 0.0625f) worstTinyAbs = std::fmax(worstTinyAbs, std::fabs((double)attnc_ex2_fma(x) - std::exp2((double)x)));
  std::printf("%.6e %.9g %.6e %.9g %.9g %d %.9g\\n", worstRel, worstX, worstTinyAbs, attnc_ex2_fma(-INFINITY), attnc_ex2_fma(0.f),
              std::isnan(attnc_ex2_fma(NAN)) ? 1 : 0, attnc_ex2_fma(-300.f));
  return 0;
}
`;

describe.skipIf(!cxx)('attnc_ex2_fma (exp2 on the FMA pipe)', () => {
  it('is within 3e-6 relative of exp2 from 0 down to -126, gives 0 below -126.5 and for -inf, keeps NaN', () => {
    const src = join(work, 'ex2.cpp'), bin = join(work, 'ex2');
    writeFileSync(src, HARNESS);
    execFileSync(cxx!, ['-O2', '-std=c++17', '-o', bin, src]);
    const [rel, , tinyAbs, atNegInf, atZero, nanKept, at300] = execFileSync(bin, { encoding: 'utf8' }).trim().split(' ').map(Number);
    // The degree-4 minimax polynomial's own bound is 2.6e-6 (2.7e-6 with f32 rounding).
    expect(rel).toBeGreaterThan(0);
    expect(rel).toBeLessThan(3e-6);
    expect(tinyAbs).toBeLessThan(1.2e-38);  // at most 2^-126.5, the largest value flushed to 0
    expect([atNegInf, nanKept, at300]).toEqual([0, 1, 0]);
    expect(Math.abs(atZero - 1)).toBeLessThan(3e-6);
  }, 60_000);
});
