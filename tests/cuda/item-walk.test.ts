// The persistent Hopper kernel's walk over work items (render/cuda-wgmma-ws.ts): the loop header the
// kernel is rendered with, run as JavaScript for many grid sizes, visits every item exactly once, and
// both roles of a block (producer and consumers) walk the same items in the same order.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { renderCuda } from '../../src/compiler/render/cuda.ts';
import { loadExamples } from './suite.ts';

const causal = loadExamples(['causal'])[0];

/** The kernel's item-loop headers (one per role), as JavaScript functions of (item0, item_stride, n_items) -> items. */
function itemWalks(snakeOrder: boolean): ((item0: number, stride: number, n: number) => number[])[] {
  const src = renderCuda(causal.lowered, { dtype: 'bf16', headDim: 64, hash: 'h', version: 'v', arch: 'sm_90a', tiles: { persistent: true, snakeOrder } }).source;
  const headers = src.match(/for \(int (?:round = 0, )?item = item0;[^\n]*\{/g) ?? [];
  return headers.map((h) => {
    const body = `let item_n = 0; const seen = []; ${h.replace(/\bint /g, 'let ')} seen.push(item); } return seen;`;
    return new Function('item0', 'item_stride', 'n_items', body) as (a: number, b: number, c: number) => number[];
  });
}

describe('persistent kernel: the item walk', () => {
  for (const snake of [false, true]) {
    it(`${snake ? 'snake order' : 'grid stride'}: every item exactly once, the same walk for both roles`, () => {
      const walks = itemWalks(snake);
      expect(walks).toHaveLength(2);  // producer, consumers
      fc.assert(fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 2000 }), (grid, nItems) => {
        const visits = new Array<number>(nItems).fill(0);
        for (let b = 0; b < Math.min(grid, nItems); b++) {
          const [producer, consumers] = walks.map((w) => w(b, grid, nItems));
          expect(consumers).toEqual(producer);
          for (const i of producer) visits[i]++;
        }
        expect(visits.every((v) => v === 1)).toBe(true);
      }), { numRuns: 300 });
    });
  }

  it('snake order: odd rounds run in reverse', () => {
    const [walk] = itemWalks(true);
    expect(walk(0, 4, 12)).toEqual([0, 7, 8]);
    expect(walk(3, 4, 12)).toEqual([3, 4, 11]);
    expect(walk(1, 4, 10)).toEqual([1, 6, 9]);
    expect(walk(3, 4, 10)).toEqual([3, 4]);  // a last, partial round: item 8 + 3 = 11 is past the end
  });
});
