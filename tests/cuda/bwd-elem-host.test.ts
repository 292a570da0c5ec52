// The CUDA backward's element step with the variant `tables` (the forward's element code: per-row registers,
// per-key and per-diagonal tables filled per tile, g of an affine logit as a2 ln 2) against the default step that
// evaluates every value per element (the kernels that ran against float64 on a GPU), their exact generated source
// run on the CPU. No GPU needed: a swapped row and column, a diagonal off by one or a wrong g fails here, in CI.
// For every example, in both launches (dQ: rows are queries; dK/dV: rows are keys, columns queries, tables
// transposed), at tiles on and off the diagonal, ragged ends, Nq < Nk and a second query head: every thread's p and
// dS of every element must agree (relative 1e-5; both steps select dropped pairs away to 0).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { helpersUsed } from '../../src/compiler/render/cstyle.ts';
import { renderCudaBackward } from '../../src/compiler/render/cuda-bwd.ts';
import type { CudaBackwardTuning } from '../../src/compiler/render/cuda-bwd-tuning.ts';
import { CUDA } from '../../src/compiler/render/lang-cuda.ts';
import { mangle } from '../../src/compiler/render/names.ts';
import { AXIS_SIZE } from '../../src/compiler/syntax/ast.ts';
import { loadExamples, type Spec } from './suite.ts';

const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('tests/cuda/bwd-elem-host.test.ts: skipped: no host C++ compiler (g++, c++, clang++)');
const work = mkdtempSync(join(tmpdir(), 'attnc-bwd-elem-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The text strictly between `from` and the first `to` after it (both must be there). */
function between(source: string, from: string, to: string): string {
  const a = source.indexOf(from);
  if (a < 0) throw new Error(`not in the generated source: ${JSON.stringify(from)}`);
  const b = source.indexOf(to, a + from.length);
  if (b < 0) throw new Error(`no ${JSON.stringify(to)} after ${JSON.stringify(from)}`);
  return source.slice(a + from.length, b);
}

/** A lambda `auto <name> = [&](...` through its closing line, from a kernel's source. */
const lambda = (src: string, head: string) => head + between(src, head, '\n  };\n') + '\n  };';

interface Launch { masked: string; plain: string }
/** The two launches' element steps (partial tiles, full tiles) and what the tables variant declares and fills. */
function pieces(spec: Spec, tuning: CudaBackwardTuning, headDim: number) {
  const src = renderCudaBackward(spec.lowered, { dtype: 'bf16', headDim, hash: 'h', version: 'v', tuning }).source;
  const dq = src.slice(src.indexOf('_bwd_dq('), src.indexOf('_bwd_dkdv('));
  const dkdv = src.slice(src.indexOf('_bwd_dkdv('));
  const step = (k: string, test: string, after: string): Launch => ({
    masked: between(k, `    if (${test}) {\n`, '\n    } else {\n'),
    plain: between(k, '\n    } else {\n', `\n    }\n    // ${after}`),
  });
  return {
    qt: Number(/QT = (\d+)/.exec(dkdv)![1]),
    dq: step(dq, 'tile_partial(j)', 'dQ += dS K'),
    dkdv: step(dkdv, 'item_partial(it)', 'dV += P^T dO'),
    // tables only: declarations, head and per-row values (dQ), fill lambdas, per-item head values (dK/dV)
    dqDecls: tuning.tables ? between(dq, '__shared__ float sLse2[BM], sDelta[BM];\n', '  const int hq = blockIdx.y') : '',
    dqValues: tuning.tables ? between(dq, '  // ---- values per (batch, head), and per query row', '  // ---- tile classification').replace(/^[^\n]*\n/, '') : '',
    dqFill: tuning.tables ? lambda(dq, '  auto fill_tables = [&](int j, int buf) {') : '',
    dkdvDecls: tuning.tables ? between(dkdv, '__shared__ float sLse2[2][QT], sDelta[2][QT];\n', '  const int hk = blockIdx.y') : '',
    dkdvFill: tuning.tables ? lambda(dkdv, '  auto fill_tables = [&](int it, int buf) {') : '',
    dkdvHead: tuning.tables ? between(dkdv, 'q0 = qrow0 + (Nk - Nq);\n    (void)hq;\n', '    const unsigned st = ') : '',
  };
}

// Shapes: (Nq, Nk); tiles (first query row or query tile, first key) on and off the diagonal and at the ragged ends.
const SHAPES: Array<{ nq: number; nk: number }> = [{ nq: 300, nk: 300 }, { nq: 100, nk: 700 }];

const program = (spec: Spec, full: ReturnType<typeof pieces>, tab: ReturnType<typeof pieces>, headDim: number) => {
  const p = spec.lowered.program;
  // Tables as long as the longest shape's axis (the kernels clamp their reads to the call's).
  const size = { Hq: 4, B: 2, Nq: Math.max(...SHAPES.map((x) => x.nq)), Nk: Math.max(...SHAPES.map((x) => x.nk)) };
  const tables = p.inputs.map((t, ti) => {
    const n = size[AXIS_SIZE[t.axis]];
    // ids as documents would have them (runs), floats in [0.1, 2)
    const vals = Array.from({ length: n }, (_, x) => (t.elem === 'i32' ? Math.floor(x / (7 + 13 * ti)) : 0.1 + ((x * 7919 + ti * 104729) % 1000) / 526));
    return `static const ${t.elem === 'i32' ? 'int' : 'float'} ${mangle('t', t.name)}[] = {${vals.join(', ')}};`;
  });
  const params = p.params.map((q) => `  const ${q.type === 'f32' ? 'float' : 'int'} ${mangle('p', q.name)} = ${q.type === 'f32' ? `(float)(${q.default})` : q.default};`);
  const stepText = [full.dq.masked, tab.dq.masked, tab.dqValues, tab.dqFill, tab.dkdvFill].join('\n');
  const check = `
        for (int n = 0; n < NT; ++n) for (int r = 0; r < 4; ++r) {
          const float a[2] = {fs[n][r], fdp[n][r]}, b[2] = {ts[n][r], tdp[n][r]};
          for (int v = 0; v < 2; ++v) {
            ++compared;
            if (!(std::fabs(a[v] - b[v]) <= 1e-5f * std::max(std::fabs(a[v]), std::fabs(b[v])) + 1e-30f)) {
              if (++bad <= 5) std::printf("%s %s n %d r %d thread %d: %a vs %a\\n", launch, v ? "dS" : "p", n, r, warp * 32 + lane, a[v], b[v]);
            }
            if (a[v] != 0.f) ++nonzero;
          }
        }`;
  // One thread's inputs: dot products and dP in [-3, 3), the same for both steps.
  const inputs = `
        for (int n = 0; n < NT; ++n) for (int r = 0; r < 4; ++r) {
          const unsigned h = (unsigned)(((warp * 32 + lane) * 131 + n * 17 + r) * 2654435761u + seed);
          fs[n][r] = ts[n][r] = ((h >> 8) % 6000) / 1000.0f - 3.0f;
          fdp[n][r] = tdp[n][r] = ((h >> 3) % 6000) / 1000.0f - 3.0f;
        }`;
  const full2 = (code: string, s: string, dp: string) => `{ float (&s)[NT][4] = ${s}; float (&dp)[NT][4] = ${dp};\n${code}\n        }`;
  // One thread's elements through both steps, the partial tiles' then the full tiles' (the kernel runs the latter
  // only where the mask keeps every pair: elsewhere neither is defined to agree, so dropped pairs are zeroed in both,
  // found by the default partial step's dS = 0 for inputs of 1).
  const compareSteps = (f: Launch, t: Launch) => `
        float fs[NT][4], fdp[NT][4], ts[NT][4], tdp[NT][4];
${inputs}
        ${full2(f.masked, 'fs', 'fdp')}
        ${full2(t.masked, 'ts', 'tdp')}
${check}
${inputs}
        ${full2(f.plain, 'fs', 'fdp')}
        ${full2(t.plain, 'ts', 'tdp')}
        {
          float ms[NT][4], mdp[NT][4];
          for (int n = 0; n < NT; ++n) for (int r = 0; r < 4; ++r) { ms[n][r] = 0.5f; mdp[n][r] = 1.f; }
          ${full2(f.masked, 'ms', 'mdp')}
          for (int n = 0; n < NT; ++n) for (int r = 0; r < 4; ++r) if (mdp[n][r] == 0.f) fs[n][r] = fdp[n][r] = ts[n][r] = tdp[n][r] = 0.f;
        }
${check}`;
  return `#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n)
#define ATTNC_NEG_INF (-INFINITY)
using std::min;
using std::max;
inline int attnc_clampi(int x, int n) { return min(max(x, 0), n - 1); }
inline float attnc_ex2(float x) { return exp2f(x); }
${helpersUsed(CUDA, stepText).join('\n')}
${tables.join('\n')}
int main() {
  constexpr int HEAD_DIM = ${headDim};
  const int B = 2, Hq = 4, Hkv = 2, bb = 1;
  (void)B; (void)Hkv; (void)bb;
${params.join('\n')}
  long compared = 0, nonzero = 0, bad = 0;
  unsigned seed = 1;
  for (const auto& shape : {${SHAPES.map((x) => `std::pair<int, int>{${x.nq}, ${x.nk}}`).join(', ')}}) {
  const int Nq = shape.first, Nk = shape.second;
  // ---- dQ: a block of 64 query rows, 64-key tiles ----
  {
    const char* launch = "dQ";
    constexpr int BM = 64, BN = 64, NT = BN / 8;
${tab.dqDecls}
    for (const int hq : {0, 3})
    for (int row0 = 0; row0 < Nq; row0 += 3 * BM)
    for (int j = 0; j * BN < Nk; j += 2) {
      const int q0 = row0 + (Nk - Nq), kv0 = j * BN, stage = 1;
      int tid = 0, warp = 0, g = 0;  // the head values (and some row's) before the fill, as in the kernel
${tab.dqValues}
${tab.dqFill.replace(/^  /gm, '      ')}
      for (tid = 0; tid < 128; ++tid) fill_tables(j, stage);
      for (warp = 0; warp < 4; ++warp) for (int lane = 0; lane < 32; ++lane) {
        g = lane >> 2;
        const int t4 = lane & 3;
${tab.dqValues}
        float lse2[2], dl[2];
        for (int h = 0; h < 2; ++h) { lse2[h] = 1.0f + 0.37f * ((g + 8 * h + warp) % 5); dl[h] = 0.25f * ((g + h) % 3) - 0.2f; }
        ++seed;
${compareSteps(full.dq, tab.dq)}
      }
    }
  }
  // ---- dK/dV: a block of 64 keys, query tiles of QT; rows are keys, columns queries ----
  {
    const char* launch = "dKdV";
    constexpr int BK = 64, QT = ${full.qt}, NT = QT / 8;
    const int hk = 1, group = Hq / Hkv, n_qt = (Nq + QT - 1) / QT;
    float sLse2[2][QT], sDelta[2][QT];
${tab.dkdvDecls}
    for (int k0 = 0; k0 < Nk; k0 += 3 * BK)
    for (int it = 0; it < group * n_qt; it += 3) {
      const int hq = hk * group + it / n_qt, qrow0 = (it % n_qt) * QT, q0 = qrow0 + (Nk - Nq), stage = 0;
      (void)hq;
      for (int x = 0; x < QT; ++x) { sLse2[stage][x] = 1.0f + 0.29f * (x % 7); sDelta[stage][x] = 0.2f * (x % 4) - 0.3f; }
      int tid = 0;
${tab.dkdvFill.replace(/^  /gm, '      ')}
      for (tid = 0; tid < 128; ++tid) fill_tables(it, stage);
      for (int warp = 0; warp < 4; ++warp) for (int lane = 0; lane < 32; ++lane) {
        const int g = lane >> 2, t4 = lane & 3;
${tab.dkdvHead}
        ++seed;
${compareSteps(full.dkdv, tab.dkdv)}
      }
    }
  }
  }
  std::printf("compared %ld nonzero %ld bad %ld\\n", compared, nonzero, bad);
}
`;
};

describe.skipIf(!cxx)('CUDA backward, variant tables: the element step = the default\'s, on the host', () => {
  for (const spec of loadExamples()) {
    it(spec.name, () => {
      for (const D of [64, 128]) {
        const full = pieces(spec, {}, D), tab = pieces(spec, { tables: true }, D);
        const src = join(work, `${spec.name}-${D}.cpp`), bin = src.replace(/\.cpp$/, '');
        writeFileSync(src, program(spec, full, tab, D));
        execFileSync(cxx!, ['-O0', '-std=c++17', '-Wno-unknown-pragmas', '-o', bin, src]);
        const out = execFileSync(bin, { encoding: 'utf8' }).trim();
        const m = /compared (\d+) nonzero (\d+) bad (\d+)$/.exec(out);
        expect(m, out).not.toBeNull();
        const [compared, nonzero, bad] = m!.slice(1).map(Number);
        expect(bad, `${spec.name} D=${D}:\n${out}`).toBe(0);
        expect(nonzero, out).toBeGreaterThan(compared / 10);
      }
    }, 300_000);  // 20 C++ builds: as the nvcc tests, time for a loaded 2-core machine
  }
});
