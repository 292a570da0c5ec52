// The CUDA kernels' K/V copy loop (src/compiler/render/cuda-spec.ts kvStaging, load_kv), its exact generated
// source, run on the CPU: every thread of the block in turn, with cp.async and the shared-memory address
// recorded instead of copied. For each way the kernels call it (mma.sync, CUDA-core f32, wgmma without and
// with a producer warpgroup, whose loop walks rows of one chunk column) and for tiles cut short by Nk, every
// 16-byte chunk of the K and V tiles must be copied exactly once, from its row and column, into the place
// the layout gives it, zero-filled past Nk. No GPU needed: an index slip in either loop fails here, in CI.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSpecCode, kvStaging, type StagingOptions } from '../../src/compiler/render/cuda-spec.ts';
import { WGMMA_KV_ROW_BYTES, wgmmaKvDst } from '../../src/compiler/render/cuda-wgmma.ts';
import { loadExamples } from './suite.ts';

const cxx = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('tests/cuda/copy-host.test.ts: skipped: no host C++ compiler (g++, c++, clang++)');
const work = mkdtempSync(join(tmpdir(), 'attnc-copy-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Config {
  label: string;
  elem: 'unsigned short' | 'float';
  perChunk: 8 | 4;
  headDim: number;
  bn: number;
  threads: number;
  swizzled: boolean;
  opts: StagingOptions;
}
const STAGES = 3;
const configs: Config[] = [
  { label: 'mma.sync D=128 BN=64, 256 threads', elem: 'unsigned short', perChunk: 8, headDim: 128, bn: 64, threads: 256, swizzled: false, opts: {} },
  { label: 'mma.sync D=64 BN=128, 128 threads', elem: 'unsigned short', perChunk: 8, headDim: 64, bn: 128, threads: 128, swizzled: false, opts: {} },
  { label: 'f32 D=64 BN=32, 96 threads', elem: 'float', perChunk: 4, headDim: 64, bn: 32, threads: 96, swizzled: false, opts: {} },
  { label: 'wgmma short rows D=64 BN=64, 128 threads', elem: 'unsigned short', perChunk: 8, headDim: 64, bn: 64, threads: 128, swizzled: true, opts: { kvDst: wgmmaKvDst } },
  // The producer: whole tiles at immediate offsets (immediateRows), tiles cut short by Nk in its row loop.
  { label: 'wgmma producer D=64 BN=160', elem: 'unsigned short', perChunk: 8, headDim: 64, bn: 160, threads: 128, swizzled: true, opts: { kvDst: wgmmaKvDst, copyUnroll: 2, immediateRows: { headDim: 64, rowBytes: WGMMA_KV_ROW_BYTES } } },
  { label: 'wgmma producer D=128 BN=128', elem: 'unsigned short', perChunk: 8, headDim: 128, bn: 128, threads: 128, swizzled: true, opts: { kvDst: wgmmaKvDst, copyUnroll: 2, immediateRows: { headDim: 128, rowBytes: WGMMA_KV_ROW_BYTES } } },
  { label: 'wgmma producer D=64 BN=128, row loop only', elem: 'unsigned short', perChunk: 8, headDim: 64, bn: 128, threads: 128, swizzled: true, opts: { kvDst: wgmmaKvDst, copyUnroll: 2 } },
];

/** load_kv's lambda, as the kernel has it. */
function loadKv(c: Config): string {
  const spec = buildSpecCode(loadExamples(['causal'])[0].lowered);
  const text = kvStaging(spec, c.elem, c.perChunk, 64, c.bn, c.threads, c.opts);
  const m = /\n(\s*auto load_kv = \[&\]\(int j, int st\) \{[\s\S]*?\n\s*\};)\n\s*auto fill_tables/.exec(text);
  if (!m) throw new Error('load_kv not found in kvStaging output');
  return m[1];
}

// Expected element offset of chunk c of row r of stage st in the K (or V) tile area.
function dstOf(c: Config, st: number, r: number, ch: number): number {
  if (!c.swizzled) return (st * c.bn + r) * (c.headDim + c.perChunk) + ch * c.perChunk;
  return st * c.bn * c.headDim + (ch >> 3) * (c.bn * 64) + r * 64 + (((ch & 7) ^ (r & 7)) << 3);
}

const program = (c: Config, tiles: Array<[number, number, number]>, copyLoop = loadKv(c)) => `#include <cstddef>
#include <cstdio>
using T = ${c.elem};
constexpr int HEAD_DIM = ${c.headDim}, BN = ${c.bn}, STRIDE = HEAD_DIM + ${c.perChunk}, NTHREADS = ${c.threads};
constexpr int CHUNKS = HEAD_DIM / ${c.perChunk};
static T smem[2 * ${STAGES} * BN * (HEAD_DIM + ${c.perChunk}) + 64];
static T gmem[2][1 << 17];
static unsigned attnc_smem_addr(const void* p) { return (unsigned)((const char*)p - (const char*)smem); }
// One line per copy: K or V (by the source array), the destination element, the source element, valid.
static void attnc_cp_async16(unsigned dst, const void* src, bool valid) {
  const T* s = (const T*)src;
  const int kv = s >= gmem[1] ? 1 : 0;
  std::printf("%d %u %ld %d\\n", kv, dst / (unsigned)sizeof(T), (long)(s - gmem[kv]), valid ? 1 : 0);
}
// The same at immediate byte offsets (the producer's whole tiles).
template <int DST_OFF, int SRC_OFF> static void attnc_cp_async16_at(unsigned dst, const void* src) {
  attnc_cp_async16(dst + DST_OFF, (const char*)src + SRC_OFF, true);
}
int main() {
  T* const sK = smem;
  T* const sV = smem + ${STAGES} * BN * (HEAD_DIM + ${c.perChunk});
  const T* const gK = gmem[0];
  const T* const gV = gmem[1];
  (void)sK; (void)sV;
${tiles.map(([j, st, nk]) => `  std::printf("tile ${j} ${st} ${nk}\\n");
  for (int tid = 0; tid < NTHREADS; ++tid) {
    const int Nk = ${nk};
${copyLoop}
    load_kv(${j}, ${st});
  }`).join('\n')}
}
`;

describe.skipIf(!cxx)('CUDA K/V copy loop on the host', () => {
  for (const c of configs) {
    it(c.label, () => {
      // (tile j, stage, Nk): whole tiles (one ending exactly at Nk), and tiles that Nk cuts short (by one row, a
      // partial last tile, one row left, none)
      const tiles: Array<[number, number, number]> = [[0, 0, 4 * c.bn], [1, 2, 4 * c.bn], [2, 1, 2 * c.bn + 5], [3, 0, 3 * c.bn + 1], [1, 1, c.bn],
        [1, 0, 2 * c.bn], [1, 2, 2 * c.bn - 1]];
      const src = join(work, `copy-${configs.indexOf(c)}.cpp`), bin = src.replace(/\.cpp$/, '');
      writeFileSync(src, program(c, tiles));
      execFileSync(cxx!, ['-O1', '-std=c++17', '-Wno-unknown-pragmas', '-o', bin, src]);
      const out = execFileSync(bin, { encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n');
      let t = -1;
      const perTile: string[][] = tiles.map(() => []);
      for (const line of out) if (line.startsWith('tile ')) t++; else perTile[t].push(line);
      const vBase = STAGES * c.bn * (c.headDim + c.perChunk), chunks = c.headDim / c.perChunk;
      tiles.forEach(([j, st, nk], ti) => {
        // destination (tile K = 0 or V = 1, element offset in it) -> [source tile, source offset, valid, times]
        const copies = new Map<string, number[]>();
        for (const line of perTile[ti]) {
          const [srcKv, dst, srcOff, valid] = line.split(' ').map(Number);
          const area = dst >= vBase ? 1 : 0, key = `${area} ${dst - area * vBase}`;
          const prev = copies.get(key);
          copies.set(key, [srcKv, srcOff, valid, (prev?.[3] ?? 0) + 1]);
        }
        expect(perTile[ti].length, `tile ${j}: copies`).toBe(2 * c.bn * chunks);
        for (let kv = 0; kv < 2; kv++) for (let r = 0; r < c.bn; r++) for (let ch = 0; ch < chunks; ch++) {
          const what = `tile ${j} stage ${st} Nk ${nk}: ${kv ? 'V' : 'K'} row ${r} chunk ${ch}`;
          const got = copies.get(`${kv} ${dstOf(c, st, r, ch)}`);
          expect(got?.[3], `${what}: times copied`).toBe(1);
          const [srcKv, srcOff, valid] = got!;
          const kr = j * c.bn + r;
          expect(srcKv, `${what}: source tile`).toBe(kv);
          expect(valid, `${what}: valid (row ${kr}, Nk ${nk})`).toBe(kr < nk ? 1 : 0);
          // a valid chunk comes from global row j*BN + r, its own column; a zero-filled one reads the tile's base
          expect(srcOff, `${what}: source`).toBe(kr < nk ? kr * c.headDim + ch * c.perChunk : 0);
        }
      });
    }, 60_000);
  }
});
