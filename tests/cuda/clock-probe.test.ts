// The clock probe (src/runtime/cuda-clock-probe.ts): its arithmetic here, its source through nvcc where nvcc is
// present; on a GPU, tests/cuda/runtime.test.ts runs it beside timed launches.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLOCK_PROBE_SOURCE, probeMhz } from '../../src/runtime/cuda-clock-probe.ts';
import { findNvcc } from '../../src/cli/cubin.ts';

const pairs = (...xs: number[]) => BigUint64Array.from(xs.map(BigInt));

describe('clock probe', () => {
  it('takes cycles per nanosecond x 1000 per block, and the median over the blocks', () => {
    // 198 000 cycles in 100 000 ns = 1980 MHz; 180 000 = 1800; 200 000 = 2000
    expect(probeMhz(pairs(198_000, 100_000, 180_000, 100_000, 200_000, 100_000))).toBeCloseTo(1980, 9);
    expect(probeMhz(pairs(150_000, 100_000))).toBeCloseTo(1500, 9);
  });

  it('leaves out blocks whose timer did not advance, and refuses when none did', () => {
    expect(probeMhz(pairs(198_000, 0, 150_000, 100_000))).toBeCloseTo(1500, 9);
    expect(() => probeMhz(pairs(198_000, 0))).toThrow(/globaltimer did not advance/);
    expect(() => probeMhz(pairs())).toThrow(/no block/);
  });

  const nvcc = findNvcc();
  it.skipIf(!nvcc)('builds for sm_80 and sm_90a without spills or warnings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-probe-'));
    try {
      writeFileSync(join(dir, 'probe.cu'), CLOCK_PROBE_SOURCE);
      for (const arch of ['sm_80', 'sm_90a']) {
        const r = spawnSync(nvcc!, ['-cubin', `-arch=${arch}`, '-Xptxas', '-v', '-o', join(dir, `probe.${arch}.cubin`), join(dir, 'probe.cu')], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/0 bytes spill stores, 0 bytes spill loads/);
        expect(r.stderr.split('\n').filter((l) => /warning/i.test(l))).toEqual([]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
