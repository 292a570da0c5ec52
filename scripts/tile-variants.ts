// The tile-variant labels scripts/cuda-bench.ts and scripts/ptxas-report.ts take (--variants a,b,...):
//   default            the tiles the compiler picks for each spec and shape (cuda-tiles.ts), as `attnc compile` would
//   default+m, -flt    those with pieces of the softmax diet on or off (dietOverrides; no short-row kernel then)
//   WARPSxBN[xMT][p[STAGES][o][P[r]][sSCAN][-LETTERS|+LETTERS...]][@CTAS]
//                      warps x BN x m16 tiles per warp; on Hopper a suffix p adds the producer warpgroup, p3 with 3
//                      stages, o overlaps softmax with P V, P makes it persistent (r: plain round-robin order), sN keeps
//                      N table-scan loads in flight, then diet letters; @2 builds for 2 blocks per SM
import type { TileOverrides } from '../src/compiler/schedule/cuda-tiles.ts';
import { DIET_GROUPS, DIET_LETTERS, dietOverrides } from '../tests/cuda/suite.ts';

export const TILE_VARIANT_SYNTAX = `default, default+LETTERS (signed groups of ${DIET_LETTERS}) or WARPSxBN[xMT][p[STAGES][o][P[r]][sSCAN][-LETTERS|+LETTERS...]][@CTAS]`;

/** A label's tile overrides (undefined: the compiler's own tiles), or null where the label does not parse. */
export function parseTileVariant(s: string): { label: string; tiles: TileOverrides | undefined } | null {
  if (s === 'default') return { label: s, tiles: undefined };
  const d = new RegExp(`^default(${DIET_GROUPS})$`).exec(s);
  if (d) return { label: s, tiles: dietOverrides(d[1]) };
  const m = new RegExp(`^(\\d+)x(\\d+)(?:x(\\d+))?(p(\\d)?(o)?(P)?(r)?(?:s(\\d+))?(${DIET_GROUPS})?)?(?:@(\\d))?$`).exec(s);
  if (!m) return null;
  return { label: s, tiles: { warps: Number(m[1]), bn: Number(m[2]), mt: Number(m[3] ?? 1), producer: m[4] !== undefined, stages: Number(m[5] ?? 2), overlap: m[6] === 'o', persistent: m[7] === 'P', snakeOrder: m[8] === 'r' ? false : undefined, scanBatch: m[9] === undefined ? undefined : Number(m[9]), ...dietOverrides(m[10]), ctas: Number(m[11] ?? 1) } };
}
