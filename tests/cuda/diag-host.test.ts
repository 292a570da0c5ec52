// Per-diagonal values (scale_invariant's a_t and m_t), their exact generated source run on the CPU. No GPU needed:
// an off-by-one in either fails here, in CI.
// - The producer's tables (src/compiler/render/cuda-spec.ts tableFill): every producer thread in turn through a work
//   item's tiles. With the values carried in registers from tile to tile (CudaTiles.diagCarry), every table entry of
//   every tile must be bit for bit the one the plain fill computes, whether the tiles follow each other (shifted
//   values), skip some (dead tiles: all recomputed) or start a new item (fresh registers), at BM 128 with BN 128 (2
//   slots per thread) and BN 96 (3, with idle threads), and at BM 192 (three consumer warpgroups) with BN 96 and 64.
// - The consumers' early reads (CudaTiles.diagPrefetch, SpecCode.diagPrefetch): for every thread of both consumer
//   warpgroups (three at BM 192) and every element of its wgmma fragment, the logit the element loop computes from the
//   registers must be the one it computes from the table, at BM 128 with BN 128 and 96, and at BM 192 with BN 64.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSpecCode, kvStaging } from '../../src/compiler/render/cuda-spec.ts';
import { loadExamples } from './suite.ts';

const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('tests/cuda/diag-host.test.ts: skipped: no host C++ compiler (g++, c++, clang++)');
const work = mkdtempSync(join(tmpdir(), 'attnc-diag-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const THREADS = 128, STAGES = 3;
const spec = buildSpecCode(loadExamples(['scale_invariant'])[0].lowered);

/** The per-item declarations and fill_tables lambda, as the producer has them. */
function fillCode(bm: number, bn: number, carry: boolean): string {
  const text = kvStaging(spec, 'unsigned short', 8, bm, bn, THREADS, { copyUnroll: 2, diagCarry: carry });
  const m = /\n((?:[ \t]*\/\/ Per-diagonal values[^\n]*\n[^\n]*\n[^\n]*\n)?[ \t]*auto fill_tables = \[&\]\(int j, int buf\) \{[\s\S]*?\n[ \t]*\};)\n/.exec(text);
  if (!m) throw new Error('fill_tables not found in kvStaging output');
  if (carry !== m[1].includes('dc_tile')) throw new Error(`fill_tables: carry ${carry}, but the code ${carry ? 'keeps no' : 'keeps'} registers`);
  return m[1];
}

// Items (q0 and the live tiles in the order the producer fills them): tiles in a row, tiles with gaps
// (a shift must not follow a skipped tile), one tile, and a second item on the same thread.
const items: Array<{ q0: number; tiles: number[] }> = [
  { q0: 1000, tiles: [0, 1, 2, 3, 4] },
  { q0: 5000, tiles: [2, 3, 5, 6, 9, 10, 11] },
  { q0: 77, tiles: [0] },
  { q0: 300, tiles: [1, 2] },
];

const program = (bm: number, bn: number, carry: boolean) => `#include <cmath>
#include <cstdio>
#include <initializer_list>
constexpr int HEAD_DIM = 64, BN = ${bn}, W = ${bm} + ${bn} - 1;
static float st_dv[${STAGES}][W][2];
static float out[${items.reduce((n, it) => n + it.tiles.length, 0)}][W][2];
int main() {
  const float p_tau = 10.0f;
${spec.headLines.join('\n')}
  for (int tid = 0; tid < ${THREADS}; ++tid) {
    int call = 0;
${items.map((it) => `    {
      const int q0 = ${it.q0};
${fillCode(bm, bn, carry)}
      for (int j : {${it.tiles.join(', ')}}) {
        const int buf = call % ${STAGES};
        for (int x = 0; x < W; ++x) st_dv[buf][x][0] = st_dv[buf][x][1] = NAN;
        fill_tables(j, buf);
        for (int x = 0; x < W; ++x) for (int v = 0; v < 2; ++v) if (!std::isnan(st_dv[buf][x][v])) out[call][x][v] = st_dv[buf][x][v];
        ++call;
      }
    }`).join('\n')}
  }
  for (auto& tile : out) for (auto& e : tile) std::printf("%a %a\\n", e[0], e[1]);
}
`;

function build(name: string, code: string): string[] {
  const src = join(work, `${name}.cpp`), bin = src.replace(/\.cpp$/, '');
  writeFileSync(src, code);
  execFileSync(cxx!, ['-O1', '-std=c++17', '-Wno-unknown-pragmas', '-o', bin, src]);
  return execFileSync(bin, { encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n');
}

describe.skipIf(!cxx)('per-diagonal values carried from tile to tile, on the host', () => {
  for (const [bm, bn] of [[128, 128], [128, 96], [192, 96], [192, 64]]) {
    it(`BM ${bm} BN ${bn}: every entry of every tile as the plain fill computes it`, () => {
      const plain = build(`fill-${bm}-${bn}-plain`, program(bm, bn, false)), carried = build(`fill-${bm}-${bn}-carry`, program(bm, bn, true));
      const w = bm + bn - 1, calls = items.reduce((n, it) => n + it.tiles.length, 0);
      expect(plain.length).toBe(calls * w);
      // The plain fill's values: a_t >= 1 (times the scale) and m_t <= 0 for t >= 0, so entries are real numbers.
      expect(plain.filter((l) => /nan|inf/i.test(l))).toHaveLength(0);
      let call = 0;
      for (const it of items) for (const j of it.tiles) {
        for (let x = 0; x < w; x++) {
          const i = call * w + x;
          expect(carried[i], `q0 ${it.q0} tile ${j} diagonal ${x}`).toBe(plain[i]);
        }
        call++;
      }
    }, 60_000);
  }
});

// The element loop's logit for element (n, r) of a thread, from the table and from the registers, side by side.
const prefetchProgram = (bm: number, bn: number) => {
  const nt = bn / 8, fromTable = spec.elem(false, bn), fromRegs = spec.elem(false, bn, false, true);
  return `#include <cmath>
#include <cstdio>
constexpr int BN = ${bn}, W = ${bm} + ${bn} - 1;
static float st_dv[${STAGES}][W][2];
int main() {
  for (int st = 0; st < ${STAGES}; ++st) for (int x = 0; x < W; ++x) { st_dv[st][x][0] = 1.0f + st + x / 1024.0f; st_dv[st][x][1] = -x / 64.0f - st; }
  const int stage = 2;
  for (int warp = 0; warp < ${bm / 16}; ++warp) for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t4 = lane & 3;
${spec.diagPrefetch(nt, bn, 'stage').map((l) => `    ${l}`).join('\n')}
    for (int n = 0; n < ${nt}; ++n) for (int r = 0; r < 4; ++r) {
      const int lr = warp * 16 + g + 8 * (r >> 1), lc = n * 8 + 2 * t4 + (r & 1);
      const float dotv = 0.75f + lr - 0.5f * lc;
      float a, b;
      {
${fromTable.lines.join('\n')}
        a = ${fromTable.logit2};
      }
      {
${fromRegs.lines.join('\n')}
        b = ${fromRegs.logit2};
      }
      std::printf("%d %d %d %d %a %a\\n", warp, lane, n, r, a, b);
    }
  }
}
`;
};

describe.skipIf(!cxx)('per-diagonal values read into registers while S is computed, on the host', () => {
  for (const [bm, bn] of [[128, 128], [128, 96], [192, 64]]) {
    it(`BM ${bm} BN ${bn}: every element of every consumer thread gets the logit the table gives it`, () => {
      const code = prefetchProgram(bm, bn);
      // the two logits really come from the two places
      expect(code).toMatch(/a = fmaf\(st_dv\[stage\]\[lr - lc \+ \d+\]\[0\]/);
      expect(code).toMatch(/b = fmaf\(dp_\d+\[n - \(r >> 1\) \+ 1\]\[r & 1\]/);
      const out = build(`prefetch-${bm}-${bn}`, code);
      expect(out.length).toBe((bm / 16) * 32 * (bn / 8) * 4);
      for (const line of out) {
        const [warp, lane, n, r, a, b] = line.split(' ');
        expect(b, `warp ${warp} lane ${lane} element (${n}, ${r})`).toBe(a);
      }
    }, 60_000);
  }
});
