// The producer's per-diagonal tables (src/compiler/render/cuda-spec.ts tableFill), their exact generated source,
// run on the CPU: every producer thread in turn through a work item's tiles. With the values carried in
// registers from tile to tile (CudaTiles.diagCarry), every table entry of every tile must be bit for bit the one
// the plain fill computes, whether the tiles follow each other (shifted values), skip some (dead tiles: all
// recomputed) or start a new item (fresh registers), at BN 128 (2 slots per thread) and BN 96 (3, with idle
// threads). No GPU needed: an off-by-one in the shift fails here, in CI.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSpecCode, kvStaging } from '../../src/compiler/render/cuda-spec.ts';
import { loadExamples } from './suite.ts';

const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('tests/cuda/diag-carry-host.test.ts: skipped: no host C++ compiler (g++, c++, clang++)');
const work = mkdtempSync(join(tmpdir(), 'attnc-diag-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const THREADS = 128, STAGES = 3, BM = 128;
const spec = buildSpecCode(loadExamples(['scale_invariant'])[0].lowered);

/** The per-item declarations and fill_tables lambda, as the producer has them. */
function fillCode(bn: number, carry: boolean): string {
  const text = kvStaging(spec, 'unsigned short', 8, BM, bn, THREADS, { copyUnroll: 2, diagCarry: carry });
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

const program = (bn: number, carry: boolean) => `#include <cmath>
#include <cstdio>
#include <initializer_list>
constexpr int HEAD_DIM = 64, BN = ${bn}, W = ${BM} + ${bn} - 1;
static float st_dv[${STAGES}][W][2];
static float out[${items.reduce((n, it) => n + it.tiles.length, 0)}][W][2];
int main() {
  const float p_tau = 10.0f;
${spec.headLines.join('\n')}
  for (int tid = 0; tid < ${THREADS}; ++tid) {
    int call = 0;
${items.map((it) => `    {
      const int q0 = ${it.q0};
${fillCode(bn, carry)}
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

function run(bn: number, carry: boolean): string[] {
  const src = join(work, `fill-${bn}-${carry ? 'carry' : 'plain'}.cpp`), bin = src.replace(/\.cpp$/, '');
  writeFileSync(src, program(bn, carry));
  execFileSync(cxx!, ['-O1', '-std=c++17', '-Wno-unknown-pragmas', '-o', bin, src]);
  return execFileSync(bin, { encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n');
}

describe.skipIf(!cxx)('per-diagonal values carried from tile to tile, on the host', () => {
  for (const bn of [128, 96]) {
    it(`BN ${bn}: every entry of every tile as the plain fill computes it`, () => {
      const plain = run(bn, false), carried = run(bn, true);
      const w = BM + bn - 1, calls = items.reduce((n, it) => n + it.tiles.length, 0);
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
