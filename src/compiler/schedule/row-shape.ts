// How many KV tiles a query block keeps, from the spec's tile test at a sample
// length: a persistent kernel (schedule/cuda-tiles.ts) hands work items out in a
// static round robin, which ends evenly only where every item costs about the
// same. A causal mask's rows grow from 1 tile to all of them; a window's stay
// at W / BN + 1 once past the first W keys.
import type { Analysis, AttentionProgram } from '../ir/program.ts';
import { evalNodes } from '../ir/eval.ts';
import { defaultTables } from '../../runtime/random.ts';

/** Sample: 16384 queries and keys in 128 x 128 tiles, the params at their defaults. */
const SAMPLE_LEN = 16384, SAMPLE_TILE = 128;

/**
 * True when the query blocks of the second half of a sample (a few of them, through the tile
 * test's live half, as kernels evaluate it) each keep the same number of live tiles, give or take one, and at most
 * a quarter of all tiles. Masks whose tile test reads tables are data: false.
 */
export function uniformShortRows(program: AttentionProgram, analysis: Analysis, readsTables: boolean): boolean {
  if (readsTables) return false;
  const n = SAMPLE_LEN / SAMPLE_TILE;
  const params = Object.fromEntries(program.params.map((p) => [p.name, p.default]));
  const base = { head: 0, batch: 0, q_len: SAMPLE_LEN, kv_len: SAMPLE_LEN, head_dim: 64 };
  // Tables the tile test reads only per query or head still need contents: the seeded defaults, as `explain` uses.
  const tables = defaultTables(program.inputs, { B: 1, Hq: 1, Nq: SAMPLE_LEN, Nk: SAMPLE_LEN }, 0);
  const liveTiles = (m: number) => {
    let live = 0;
    for (let j = 0; j < n; j++) {
      const builtins = { ...base, q_lo: m * SAMPLE_TILE, q_hi: (m + 1) * SAMPLE_TILE - 1, kv_lo: j * SAMPLE_TILE, kv_hi: (j + 1) * SAMPLE_TILE - 1 };
      if (evalNodes([analysis.tile.canBeTrue], { builtins, params, tables }).get(analysis.tile.canBeTrue)) live++;
    }
    return live;
  };
  const counts = [n / 2, (3 * n) / 4, n - 1].map(liveTiles);
  return Math.max(...counts) - Math.min(...counts) <= 1 && Math.max(...counts) <= n / 4;
}
