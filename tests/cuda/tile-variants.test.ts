// The tile-variant labels of scripts/cuda-bench.ts and scripts/ptxas-report.ts (scripts/tile-variants.ts).
import { describe, expect, it } from 'vitest';
import { parseTileVariant } from '../../scripts/tile-variants.ts';

describe('tile-variant labels', () => {
  it('default, diet groups, and WARPSxBN with producer, stages, overlap, persistence, diet and blocks per SM', () => {
    expect(parseTileVariant('default')).toEqual({ label: 'default', tiles: undefined });
    expect(parseTileVariant('default+cd')?.tiles).toMatchObject({ diagCarry: true, diagPrefetch: true, pingpong: undefined });
    expect(parseTileVariant('default-z+w')?.tiles).toMatchObject({ zeroRef: false, earlyPvWait: true });
    expect(parseTileVariant('12x128p3o')?.tiles).toMatchObject({ warps: 12, bn: 128, mt: 1, producer: true, stages: 3, overlap: true, persistent: false, ctas: 1 });
    expect(parseTileVariant('12x96p3oP+c')?.tiles).toMatchObject({ warps: 12, bn: 96, persistent: true, snakeOrder: undefined, diagCarry: true });
    expect(parseTileVariant('8x128p3oPr')?.tiles).toMatchObject({ persistent: true, snakeOrder: false });
    expect(parseTileVariant('4x64p3os8@2')?.tiles).toMatchObject({ warps: 4, bn: 64, scanBatch: 8, ctas: 2 });
    expect(parseTileVariant('4x64x2')?.tiles).toMatchObject({ warps: 4, bn: 64, mt: 2, producer: false, stages: 2 });
  });

  it('anything else is refused (null)', () => {
    for (const bad of ['', 'defaults', 'default+q', '12x', 'x128', '12x128p3oQ', '12x128@']) expect(parseTileVariant(bad), bad).toBeNull();
  });
});
