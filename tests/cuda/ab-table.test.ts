// scripts/cuda-ab-table.py, the table scripts/gpu-ab.sh ends with: cuda-bench --clock-probe logs (the lines as
// cuda-bench prints them) of two runs in opposite orders, read back into each label's median SM cycles and its
// ratio to the group's first label, and bench/plot-ab.ts's bars of those ratios. No GPU needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const python = spawnSync('python3', ['--version']).status === 0;
if (!python) console.warn('tests/cuda/ab-table.test.ts: skipped: no python3');
const work = mkdtempSync(join(tmpdir(), 'attnc-ab-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// One timed variant as scripts/cuda-bench.ts prints it with --clock-probe.
const timed = (spec: string, label: string, tiles: string, ms: number, mcycles: number) => [
  `${spec.padEnd(20)} bf16 B2 H16 N16384 D64 wgmma ${label.padEnd(9)} ${tiles}: median ${ms.toFixed(3)} ms  400.0 TFLOP/s (min ${(ms - 0.05).toFixed(3)}, p90 ${(ms + 0.1).toFixed(3)} ms)`,
  `  SM cycles per launch: median ${mcycles.toFixed(3)} M (min ${(mcycles - 0.1).toFixed(3)} M)`,
  `  launches in order, ms@MHz: ${ms.toFixed(3)}@1980 ${ms.toFixed(3)}@1755`,
].join('\n');

describe.skipIf(!python)('scripts/cuda-ab-table.py', () => {
  it('medians over runs, ratios to the first label, failures named', () => {
    const forward = join(work, 'forward.log'), reverse = join(work, 'reverse.log'), json = join(work, 'ab.json');
    writeFileSync(forward, ['CUDA NVIDIA H200 (sm_90a, 132 SMs)',
      timed('scale_invariant', 'default', 'BM128 BN128 3st overlap persistent', 3.1, 6.0),
      timed('scale_invariant', '12x96p3oP', 'BM192 BN96 3st overlap persistent', 2.9, 5.4),
      'scale_invariant      bf16 B2 H16 N16384 D64 12x96p3oP+d: failed: cuda sm_90a: reading per-diagonal values early takes 52 registers',
    ].join('\n'));
    writeFileSync(reverse, ['CUDA NVIDIA H200 (sm_90a, 132 SMs)',
      timed('scale_invariant', '12x96p3oP', 'BM192 BN96 3st overlap persistent', 2.8, 5.6),
      timed('scale_invariant', 'default', 'BM128 BN128 3st overlap persistent', 3.2, 6.2),
    ].join('\n'));
    const out = execFileSync('python3', ['scripts/cuda-ab-table.py', forward, reverse, '--json', json], { encoding: 'utf8' });
    expect(out).toMatch(/^scale_invariant bf16 B2 H16 N16384 D64$/m);
    expect(out).toMatch(/default .* 6\.100 M cycles \[6\.000 6\.200\]\s+x1\.000\s+min 3\.050 ms/);
    expect(out).toMatch(/12x96p3oP .* 5\.500 M cycles \[5\.400 5\.600\]\s+x0\.902\s+min 2\.750 ms/);
    expect(out).toMatch(/12x96p3oP\+d\s+failed: cuda sm_90a: reading per-diagonal values early takes 52 registers/);
    const rows = JSON.parse(readFileSync(json, 'utf8'));
    expect(rows.map((r: { label: string }) => r.label)).toEqual(['default', '12x96p3oP', '12x96p3oP+d']);
    expect(rows[1].vs_first).toBeCloseTo(5.5 / 6.1, 12);
    expect(rows[1].tiles).toBe('BM192 BN96 3st overlap persistent');
  });

  it('bench/plot-ab.ts draws the ratios: a bar per timed variant, green below 1, red above', async () => {
    const { bars, plotAbSpec } = await import('../../bench/plot-ab.ts');
    const { vegaLiteToSvg } = await import('../../src/analysis/svg.ts');
    const rows = JSON.parse(readFileSync(join(work, 'ab.json'), 'utf8'));
    expect(bars(rows).map((b) => [b.label, b.ratio])).toEqual([['default', 1], ['12x96p3oP', 0.9016]]);
    const svg = await vegaLiteToSvg(plotAbSpec(rows));
    expect(svg).toContain('12x96p3oP');
    expect(svg).not.toContain('12x96p3oP+d');  // refused: no bar
    expect(svg).toMatch(/fill="#2ca02c"/);
  });

  it('a log without SM cycles is an error, not an empty table', () => {
    const plain = join(work, 'plain.log');
    writeFileSync(plain, 'cuda-bench: no CUDA driver: libcuda.so.1 not found\n');
    const r = spawnSync('python3', ['scripts/cuda-ab-table.py', plain], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no timed variants with SM cycles/);
  });
});
