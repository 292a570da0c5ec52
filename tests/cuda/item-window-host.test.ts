// The dK/dV launch's item tests for a table-driven mask (document), their exact generated source run on the CPU.
// No GPU needed: a wrong role swap or bound fails here, in CI.
// With the backward variant `scan-window` (render/cuda-bwd.ts), a block that owns keys kv_lo..kv_hi classifies its
// items (query head, query tile) with a per-thread test (SpecCode.itemPerThread: the block's key range scanned once,
// the item's query range per thread with attnc_trange1). For every item of every key block, over ragged lengths,
// GQA groups, Nq < Nk and both query tiles (D 64: 64 rows, D 128: 32), it must give what the default kernel's
// one-item-at-a-time tests give (item_live, item_partial), and both must be sound against the mask itself: a dead
// item keeps no pair, a full one keeps every pair.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderCudaBackward } from '../../src/compiler/render/cuda-bwd.ts';
import { loadExamples } from './suite.ts';

const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('tests/cuda/item-window-host.test.ts: skipped: no host C++ compiler (g++, c++, clang++)');
const work = mkdtempSync(join(tmpdir(), 'attnc-items-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const doc = loadExamples(['document'])[0];

/** The text from `start` through the end of the first line after it that begins with `end`. */
function cut(source: string, start: string, end: string): string {
  const a = source.indexOf(start);
  if (a < 0) throw new Error(`not in the generated source: ${start}`);
  const b = source.indexOf(`\n${end}`, a);
  if (b < 0) throw new Error(`no '${end}' after ${start}`);
  return source.slice(a, source.indexOf('\n', b + 1));
}

/** The dK/dV kernel's item tests at one head dim: the default's and scan-window's, and the helpers they call. */
function itemCode(headDim: number) {
  const render = (scanWindow: boolean) => renderCudaBackward(doc.lowered, { dtype: 'bf16', headDim, hash: 'h', version: 'v', tuning: { scanWindow } }).source;
  const plain = render(false), windowed = render(true);
  const dkdv = (s: string) => s.slice(s.indexOf('_bwd_dkdv('));
  return {
    qt: Number(/constexpr int BK = 64, QT = (\d+)/.exec(dkdv(plain))![1]),
    itemLive: cut(dkdv(plain), '  auto item_live = ', '  };\n'),
    itemPartial: cut(dkdv(plain), '  auto item_partial = ', '  };\n'),
    keyLines: cut(dkdv(windowed), '  // ---- items classified', '  constexpr int SCAN_BATCH'),
    tileLive: cut(dkdv(windowed), '  auto tile_live = ', '  };\n'),
    trange1: cut(windowed, '__device__ __forceinline__ void attnc_trange1(', '}\n'),
  };
}

// (Nq, Nk, group): ragged lengths, a GQA group of 3, Nq < Nk (bottom-right aligned), short rows.
const SHAPES: Array<[number, number, number]> = [[300, 300, 1], [1000, 1000, 3], [200, 700, 2], [17, 17, 1], [129, 64, 1]];

const program = (c: ReturnType<typeof itemCode>, docs: number[], nq: number, nk: number, group: number) => `#include <algorithm>
#include <cstdio>
#define __device__
#define __forceinline__ inline
using std::min;
using std::max;
struct int4 { int x, y, z, w; };
inline int attnc_clampi(int x, int n) { return min(max(x, 0), n - 1); }
// Warp-cooperative on the device (every lane the same range); the same values by one thread here.
inline int attnc_tmin(const int* t, int lo, int hi, int n) { int v = t[attnc_clampi(lo, n)]; for (int i = attnc_clampi(lo, n); i <= attnc_clampi(max(lo, hi), n); ++i) v = min(v, t[i]); return v; }
inline int attnc_tmax(const int* t, int lo, int hi, int n) { int v = t[attnc_clampi(lo, n)]; for (int i = attnc_clampi(lo, n); i <= attnc_clampi(max(lo, hi), n); ++i) v = max(v, t[i]); return v; }
${c.trange1}
alignas(16) static const int t_doc[] = {${docs.join(', ')}};
int main() {
  const int Nq = ${nq}, Nk = ${nk}, Hkv = 2, Hq = Hkv * ${group}, hk = 1;
  constexpr int BK = 64, QT = ${c.qt};
  const int group = Hq / Hkv, n_qt = (Nq + QT - 1) / QT, items = group * n_qt;
  long checked = 0, dead = 0, full = 0, partial = 0, mismatch = 0, unsound = 0;
  for (int k0 = 0; k0 < Nk; k0 += BK) {
    const int kv_lo = k0, kv_hi = min(k0 + BK, Nk) - 1;
${c.itemLive}
${c.itemPartial}
${c.keyLines}
${c.tileLive}
    for (int it = 0; it < items; ++it) {
      const bool live = item_live(it), part = live && item_partial(it);
      bool wpart = true;
      const bool wlive = tile_live(it, wpart);
      if (wlive != live || (live && wpart != part)) {
        if (++mismatch <= 5) std::printf("mismatch k0 %d item %d: default live %d partial %d, window live %d partial %d\\n", k0, it, live, part, wlive, wpart);
      }
      // The mask itself (document: same document, causal), queries bottom-right aligned.
      const int qrow0 = (it % n_qt) * QT;
      int kept = 0, pairs = 0;
      for (int r = qrow0; r < qrow0 + QT; ++r) for (int kv = k0; kv < k0 + BK; ++kv) {
        ++pairs;
        const int qi = r + (Nk - Nq);
        if (r < Nq && kv < Nk && kv <= qi && t_doc[qi] == t_doc[kv]) ++kept;
      }
      if ((!live && kept > 0) || (live && !part && kept != pairs)) {
        if (++unsound <= 5) std::printf("unsound k0 %d item %d: live %d partial %d, %d of %d pairs kept\\n", k0, it, live, part, kept, pairs);
      }
      ++checked;
      if (!live) ++dead; else if (part) ++partial; else ++full;
    }
  }
  std::printf("checked %ld dead %ld full %ld partial %ld mismatch %ld unsound %ld\\n", checked, dead, full, partial, mismatch, unsound);
}
`;

/** Document ids along the key axis: runs of random lengths (1 to maxRun), non-decreasing, deterministic. */
function documents(n: number, maxRun: number, seed: number): number[] {
  const out: number[] = [];
  let s = seed, id = 0;
  while (out.length < n) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const run = 1 + (s % maxRun);
    for (let i = 0; i < run && out.length < n; i++) out.push(id);
    id++;
  }
  return out;
}

describe.skipIf(!cxx)('dK/dV item tests of a table-driven mask (document), on the host', () => {
  for (const D of [64, 128]) {
    it(`scan-window's per-thread item test = the default's, and sound, D=${D}`, () => {
      const code = itemCode(D);
      const totals = { dead: 0, full: 0, partial: 0 };
      for (const [i, [nq, nk, group]] of SHAPES.entries()) {
        for (const maxRun of [40, 300]) {
          const src = join(work, `items-${D}-${i}-${maxRun}.cpp`), bin = src.replace(/\.cpp$/, '');
          writeFileSync(src, program(code, documents(nk, maxRun, 7 + i), nq, nk, group));
          execFileSync(cxx!, ['-O1', '-std=c++17', '-Wno-unknown-pragmas', '-o', bin, src]);
          const out = execFileSync(bin, { encoding: 'utf8' }).trim();
          const m = /checked (\d+) dead (\d+) full (\d+) partial (\d+) mismatch (\d+) unsound (\d+)$/.exec(out);
          expect(m, out).not.toBeNull();
          const [checked, dead, full, partial, mismatch, unsound] = m!.slice(1).map(Number);
          expect(checked, out).toBeGreaterThan(0);
          expect(mismatch, `Nq ${nq} Nk ${nk} group ${group} runs <= ${maxRun}:\n${out}`).toBe(0);
          expect(unsound, `Nq ${nq} Nk ${nk} group ${group} runs <= ${maxRun}:\n${out}`).toBe(0);
          totals.dead += dead; totals.full += full; totals.partial += partial;
        }
      }
      // Every class occurred, so each branch of the tests was compared.
      expect(totals.dead).toBeGreaterThan(0);
      expect(totals.full).toBeGreaterThan(0);
      expect(totals.partial).toBeGreaterThan(0);
    }, 300_000);  // 20 C++ builds: as the nvcc tests, time for a loaded 2-core machine
  }
});
