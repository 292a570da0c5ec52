// scripts/bench-inputs.ts: the cached benchmark inputs are randomInputs' values, from the file on later calls.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cachedInputs } from '../scripts/bench-inputs.ts';
import { randomInputs } from '../src/runtime/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'attnc-bench-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cuda-bench inputs cache', () => {
  it('writes once, reads back the same values, and redraws a file of the wrong size', () => {
    const shape = { B: 2, Hq: 4, Hkv: 2, Nq: 33, Nk: 65, D: 16 };
    const want = randomInputs(shape, 7);
    const first = cachedInputs(shape, 7, dir);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);  // no temp file left behind
    const file = join(dir, files[0]);
    expect(statSync(file).size).toBe(4 * (2 * 4 * 33 * 16 + 2 * 2 * 2 * 65 * 16));
    const second = cachedInputs(shape, 7, dir);
    for (const name of ['q', 'k', 'v'] as const) {
      expect(first[name]).toEqual(want[name]);
      expect(second[name]).toEqual(want[name]);
    }
    // another seed is another file
    expect(cachedInputs(shape, 8, dir).q).toEqual(randomInputs(shape, 8).q);
    expect(readdirSync(dir)).toHaveLength(2);
    // a truncated file is not trusted
    writeFileSync(file, Buffer.alloc(12));
    expect(cachedInputs(shape, 7, dir).v).toEqual(want.v);
    expect(statSync(file).size).toBe(4 * (2 * 4 * 33 * 16 + 2 * 2 * 2 * 65 * 16));
  });
});
