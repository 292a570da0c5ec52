// bench/plot-train.ts: the training-step results of several bench/train.py runs merged (a later file's row replaces
// an earlier one's), ours against Flex as bars with the ratio beside them. No GPU needed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeTrainRows, plotTrainSpec, trainBars, type TrainRow } from '../../bench/plot-train.ts';
import { vegaLiteToSvg } from '../../src/analysis/svg.ts';

const row = (spec: string, D: number, ours?: number, flex?: number): TrainRow => ({ spec, D, N: 16384, dtype: 'bf16', ours_tflops: ours, flex_tflops: flex });

describe('bench/plot-train.ts', () => {
  it('merges runs, the later row winning; a row without both timings is left out', () => {
    const first = [row('causal', 128, 291, 396), row('causal', 64, 273, 309), row('document', 64)];
    const later = [row('causal', 128, 360, 393)];
    const merged = mergeTrainRows([first, later]);
    expect(merged.map((r) => [r.spec, r.D, r.ours_tflops])).toEqual([['causal', 128, 360], ['causal', 64, 273]]);
    expect(trainBars(merged).filter((b) => b.who === 'attnc').map((b) => b.ratio)).toEqual([0.92, 0.88]);
  });

  it('--variant: a row that timed the set shows its timing as ours; a row without it keeps the defaults', () => {
    const timed = { ...row('causal', 128, 392, 396), variants: { 'wgmma+bulk-dq': { tflops: 413 }, other: { tflops: 1 } } };
    const merged = mergeTrainRows([[row('document', 64, 173, 219)], [timed]], 'wgmma+bulk-dq');
    expect(merged.map((r) => [r.spec, r.ours_tflops])).toEqual([['document', 173], ['causal', 413]]);
    expect(mergeTrainRows([[timed]])[0].ours_tflops).toBe(392);
  });

  it('draws a pair of bars per spec and panel, with ours/Flex written beside ours', async () => {
    const svg = await vegaLiteToSvg(plotTrainSpec([row('scale_invariant', 128, 334.1, 141.7), row('causal', 128, 359.8, 392.6)], ['a.json']));
    expect(svg).toContain('>2.36<');
    expect(svg).toContain('>0.92<');
    expect(svg).toContain('bf16 D=128 N=16384');
    expect(svg).toMatch(/fill="#1f77b4"/);
    expect(svg).toMatch(/fill="#ff7f0e"/);
  });

  it('a file that does not parse is one line and exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-plot-train-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ not json');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/plot-train.ts', bad, '-o', join(dir, 'x.svg')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^plot-train: .*bad\.json: /);
  });
});
