// The CUDA kernels' online softmax (src/compiler/render/cuda-mma.ts softmaxCode and rescaleCode), its exact
// generated source, run on the CPU: one quad of 4 lanes as 4 host threads in lockstep (the shuffles and the
// warp vote go through a barrier), 2 rows each spread over the quad as in the mma fragment layout, tiles of
// logits fed one at a time, P V done by the harness (and, with rowSumMma, the tensor cores' row sums: P times
// ones into O's extra n8 tile). Every combination of the softmax diet (scale fold, lazy rescale, two chains,
// deferred rescale, row sums on the tensor cores, the zero reference with bf16's and f16's windows) against a float64 softmax, on tiles built to stress it: maxima that
// rise a little and a lot, fully masked tiles and rows, huge and tiny logits. No GPU needed, so a change to
// the softmax's logic fails here, in CI, before it reaches a device.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rescaleCode, softmaxCode, type SoftmaxOptions } from '../../src/compiler/render/cuda-mma.ts';
import { zeroRefWindow } from '../../src/compiler/schedule/cuda-tiles.ts';

const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('tests/cuda/softmax-host.test.ts: skipped: no host C++ compiler (g++, c++, clang++)');
const work = mkdtempSync(join(tmpdir(), 'attnc-softmax-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const NT = 4, ND = 2;  // 32 keys per tile (4 lanes x 4 column groups x 2), 16 value dims

interface Config { label: string; opts: SoftmaxOptions }
const configs: Config[] = [];
for (const fold of [false, true])
  for (const lazyRescale of [false, true])
    for (const twoChains of [false, true])
      for (const deferRescale of [false, true])
        for (const rowSumMma of [false, true])
          for (const zeroRef of fold ? [null] : [null, zeroRefWindow('bf16'), zeroRefWindow('f16')])
            configs.push({
              label: [fold && 'fold', lazyRescale && 'lazy', twoChains && 'chains', deferRescale && 'defer', rowSumMma && 'rowsum', zeroRef && `zero[${-zeroRef.low},${zeroRef.high}]`].filter(Boolean).join('+') || 'plain',
              opts: { fold: fold ? { a: 'A', c: 'C' } : null, lazyRescale, twoChains, deferRescale, rowSumMma, zeroRef },
            });

// With the row sums on the tensor cores, O's rescales cover its extra n8 tile (o[0][ND]), as cuda-wgmma-ws.ts passes nd + 1.
const kernelFns = configs.map(({ opts }, i) => `namespace cfg${i} {
void step(Lane& L, float A, float C) {
  auto& s = L.s; auto& m_i = L.m_i; auto& l_i = L.l_i; auto& o = L.o; auto& alpha_i = L.alpha_i;
  (void)A; (void)C; (void)alpha_i; (void)l_i;
${softmaxCode(1, NT, opts.rowSumMma ? ND + 1 : ND, opts)}
}
void rescale(Lane& L) {
  auto& o = L.o; auto& alpha_i = L.alpha_i;
${opts.deferRescale ? rescaleCode(1, opts.rowSumMma ? ND + 1 : ND, opts.lazyRescale) : ''}
  (void)o; (void)alpha_i;
}
}  // namespace cfg${i}`);

const HARNESS = `#include <barrier>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>
#define ATTNC_NEG_INF (-INFINITY)
constexpr int NT = ${NT}, ND = ${ND}, BN = 8 * NT, D = 8 * ND, LANES = 4;
static inline float attnc_ex2(float x) { return std::exp2(x); }
// A quad of 4 lanes in lockstep: every collective is a barrier, a write, a barrier, a read.
static std::barrier<> quad(LANES);
static thread_local int lane;
static float xfer[LANES];
static float __shfl_xor_sync(unsigned, float v, int m) {
  quad.arrive_and_wait(); xfer[lane] = v; quad.arrive_and_wait();
  const float r = xfer[lane ^ m]; return r;
}
static bool __any_sync(unsigned, bool p) {
  quad.arrive_and_wait(); xfer[lane] = p ? 1.f : 0.f; quad.arrive_and_wait();
  bool any = false; for (int l = 0; l < LANES; ++l) any = any || xfer[l] != 0.f; return any;
}
static bool __all_sync(unsigned, bool p) {
  quad.arrive_and_wait(); xfer[lane] = p ? 1.f : 0.f; quad.arrive_and_wait();
  bool all = true; for (int l = 0; l < LANES; ++l) all = all && xfer[l] != 0.f; return all;
}
struct Lane { float s[1][NT][4]; float m_i[2], l_i[2]; float o[1][ND + 1][4]; float alpha_i[2]; };  // o[0][ND]: row sums (rowSumMma)
${kernelFns.join('\n')}
using Step = void (*)(Lane&, float, float);
using Rescale = void (*)(Lane&);
static const Step steps[] = { ${configs.map((_, i) => `cfg${i}::step`).join(', ')} };
static const Rescale rescales[] = { ${configs.map((_, i) => `cfg${i}::rescale`).join(', ')} };
static const bool folds[] = { ${configs.map((c) => (c.opts.fold ? 'true' : 'false')).join(', ')} };
static const bool rowSums[] = { ${configs.map((c) => (c.opts.rowSumMma ? 'true' : 'false')).join(', ')} };

// Lane t4 holds columns n * 8 + 2 * t4 + c of rows h = 0, 1 (s[0][n][2h + c]) and dims n * 8 + 2 * t4 + c of O.
int main() {
  std::mt19937 rng(12345);
  std::normal_distribution<double> normal;
  const float A = 0.17677669f * 1.44269504f, C = 0.75f;  // the logit a * dot + c, log2 units (a > 0)
  double worst[${configs.length}] = {0};
  int scenarios = 0;
  for (int scenario = 0; scenario < 40; ++scenario, ++scenarios) {
    const int tiles = 1 + scenario % 7;
    const int keys = tiles * BN;
    // dots: each tile drawn at its own scale and offset, so row maxima rise by small and large steps
    std::vector<float> dot(2 * keys), v(keys * D);
    std::vector<char> keep(2 * keys);
    for (int h = 0; h < 2; ++h)
      for (int t = 0; t < tiles; ++t) {
        // scenario 4 mod 5: every tile after the first at 300 times the first's scale, so a row's max jumps by ~190 (log2 units)
        // scenario 3 mod 8: every logit near -50 (a first max below any zero reference's window);
        // 6 mod 8: the first tile there, the later ones near 0 (the reference then rises by ~50)
        const double scale = (scenario % 5 == 4) ? (t == 0 ? 1.0 : 300.0) : std::exp(normal(rng));
        const double low = (scenario % 8 == 3 || (scenario % 8 == 6 && t == 0)) ? -200.0 : 0.0;
        const double shift = low + 6.0 * normal(rng) * ((t + scenario) % 3);
        const bool tileMasked = (scenario % 6 == 5) && t % 2 == 1;  // whole tiles with nothing kept
        for (int j = t * BN; j < (t + 1) * BN; ++j) {
          dot[h * keys + j] = (float)(scale * normal(rng) + shift);
          keep[h * keys + j] = !tileMasked && !(scenario % 9 == 8 && h == 1) && (rng() % 8 != 0);  // row 1 of some scenarios: nothing kept
        }
      }
    for (auto& x : v) x = (float)normal(rng);
    for (int ci = 0; ci < ${configs.length}; ++ci) {
      Lane L[LANES];
      for (auto& l : L) { for (int i = 0; i < 2; ++i) { l.m_i[i] = ATTNC_NEG_INF; l.l_i[i] = 0.f; } for (auto& x : l.o[0]) for (auto& y : x) y = 0.f; }
      // no softmax with its sums on the tensor cores may touch l_i: NaN would show in O and LSE
      if (rowSums[ci]) for (auto& l : L) l.l_i[0] = l.l_i[1] = NAN;
      for (int t = 0; t < tiles; ++t) {
        for (int t4 = 0; t4 < LANES; ++t4)
          for (int n = 0; n < NT; ++n)
            for (int r = 0; r < 4; ++r) {
              const int h = r >> 1, j = t * BN + n * 8 + 2 * t4 + (r & 1);
              const float d = dot[h * keys + j];
              L[t4].s[0][n][r] = !keep[h * keys + j] ? ATTNC_NEG_INF : folds[ci] ? d : std::fma(A, d, C);
            }
        std::vector<std::thread> th;
        for (int t4 = 0; t4 < LANES; ++t4) th.emplace_back([&, t4] { lane = t4; steps[ci](L[t4], A, C); rescales[ci](L[t4]); });
        for (auto& x : th) x.join();
        // P V of the tile (the tensor cores' part): P from the lanes' s, added to the owning lane's O
        for (int h = 0; h < 2; ++h)
          for (int dd = 0; dd < D; ++dd) {
            float acc = 0.f;
            for (int t4 = 0; t4 < LANES; ++t4)
              for (int n = 0; n < NT; ++n)
                for (int c = 0; c < 2; ++c) acc += L[t4].s[0][n][2 * h + c] * v[(t * BN + n * 8 + 2 * t4 + c) * D + dd];
            L[(dd % 8) / 2].o[0][dd / 8][2 * h + dd % 2] += acc;
          }
        // the tensor cores' row sums (rowSumMma): P times ones, every column of the extra tile gets its row's sum
        if (rowSums[ci])
          for (int h = 0; h < 2; ++h) {
            float sum = 0.f;
            for (int t4 = 0; t4 < LANES; ++t4)
              for (int n = 0; n < NT; ++n)
                for (int c = 0; c < 2; ++c) sum += L[t4].s[0][n][2 * h + c];
            for (int t4 = 0; t4 < LANES; ++t4) for (int c = 0; c < 2; ++c) L[t4].o[0][ND][2 * h + c] += sum;
          }
      }
      // epilogue as the kernels do it: l summed over the quad, O / l, LSE = (m + log2 l) ln 2
      for (int h = 0; h < 2; ++h) {
        float l = 0.f;
        if (rowSums[ci]) l = L[0].o[0][ND][2 * h];  // as epilogueCode reads it
        else for (int t4 = 0; t4 < LANES; ++t4) l += L[t4].l_i[h];
        double mx = -INFINITY;
        for (int j = 0; j < keys; ++j) if (keep[h * keys + j]) mx = std::fmax(mx, (double)A * dot[h * keys + j] + C);
        double sum = 0; std::vector<double> ref(D, 0.0);
        for (int j = 0; j < keys; ++j) if (keep[h * keys + j]) {
          const double p = std::exp2((double)A * dot[h * keys + j] + C - mx); sum += p;
          for (int dd = 0; dd < D; ++dd) ref[dd] += p * v[j * D + dd];
        }
        double err = 0;
        for (int dd = 0; dd < D; ++dd) {
          const double got = l > 0.f ? L[(dd % 8) / 2].o[0][dd / 8][2 * h + dd % 2] / l : 0.0, want = sum > 0 ? ref[dd] / sum : 0.0;
          err = std::fmax(err, std::isnan(got) ? INFINITY : std::fabs(got - want));
        }
        const double lse = l > 0.f ? ((double)L[0].m_i[h] + std::log2((double)l)) * 0.6931471805599453 : -INFINITY;
        const double lseRef = sum > 0 ? (mx + std::log2(sum)) * 0.6931471805599453 : -INFINITY;
        const double lseErr = (std::isinf(lse) && std::isinf(lseRef) && lse == lseRef) ? 0.0 : std::fabs(lse - lseRef) / std::fmax(1.0, std::fabs(lseRef));
        worst[ci] = std::fmax(worst[ci], std::fmax(err, std::isnan(lseErr) ? INFINITY : lseErr));
      }
    }
  }
  for (int ci = 0; ci < ${configs.length}; ++ci) std::printf("%.3e\\n", worst[ci]);
  std::printf("%d\\n", scenarios);
  return 0;
}
`;

describe.skipIf(!cxx)('the CUDA online softmax, run on the host', () => {
  it('every combination of fold, lazy rescale, two chains, deferred rescale, row sums on the tensor cores and the zero reference matches a float64 softmax', () => {
    const src = join(work, 'softmax.cpp'), bin = join(work, 'softmax');
    writeFileSync(src, HARNESS);
    execFileSync(cxx!, ['-O1', '-std=c++20', '-pthread', '-Wno-unknown-pragmas', '-o', bin, src]);
    const out = execFileSync(bin, { encoding: 'utf8' }).trim().split('\n').map(Number);
    const scenarios = out.pop();
    expect(scenarios).toBe(40);
    const worst = Object.fromEntries(configs.map((c, i) => [c.label, out[i]]));
    // f32 throughout, |V| ~ 1: O and LSE within 1e-5 of float64 (observed: 2.3e-6 without the fold, 2.7e-7 with it).
    for (const [label, err] of Object.entries(worst)) expect(err, `${label}: worst |error| of O and relative LSE`).toBeLessThan(1e-5);
  }, 300_000);  // a C++ build and a threaded run: 148 s once on a 2-core machine busy with other builds
});
