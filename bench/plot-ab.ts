// The same-run A/B of scripts/gpu-ab.sh as bars: each variant's median SM cycles per launch relative to its group's
// first label (the default), one panel per spec, head dim and shape; below 1 is faster. From the ab.json that
// scripts/cuda-ab-table.py writes. Rendered headless to SVG like bench/plot.ts.
//   npx tsx bench/plot-ab.ts ab.json [-o ab.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import type * as vl from 'vega-lite';
import { vegaLiteToSvg } from '../src/analysis/svg.ts';
import { plotArgs } from './plot.ts';

export interface AbRow {
  spec: string; dtype: string; B: number; H: number; N: number; D: number; label: string;
  vs_first?: number; mcycles_median?: number; failed?: string;
}

interface Bar { panel: string; label: string; ratio: number; mcycles: number }

export function bars(rows: AbRow[]): Bar[] {
  return rows.filter((r) => typeof r.vs_first === 'number' && Number.isFinite(r.vs_first)).map((r) => ({
    panel: `${r.spec} ${r.dtype} D=${r.D} B${r.B} N${r.N}`, label: r.label, ratio: +r.vs_first!.toFixed(4), mcycles: +(r.mcycles_median ?? 0).toFixed(3),
  }));
}

export function plotAbSpec(rows: AbRow[], title = 'attnc same-run A/B'): vl.TopLevelSpec {
  const data = bars(rows);
  const labels = [...new Set(data.map((b) => b.label))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: 'median SM cycles per launch relative to each panel\'s first variant (below 1: fewer cycles); failed or refused variants are left out' },
    data: { values: data },
    config: { font: 'sans-serif' },
    facet: { field: 'panel', type: 'nominal', title: null, columns: 2 },
    spec: {
      width: 260,
      height: { step: 14 },
      layer: [
        { mark: { type: 'bar' }, encoding: {
          y: { field: 'label', type: 'nominal', sort: labels, title: null },
          x: { field: 'ratio', type: 'quantitative', title: 'cycles vs first', scale: { zero: false } },
          color: { condition: { test: 'datum.ratio < 1', value: '#2ca02c' }, value: '#d62728' },
          tooltip: [{ field: 'label' }, { field: 'ratio' }, { field: 'mcycles', title: 'M cycles' }],
        } },
        { mark: { type: 'rule', color: 'black' }, encoding: { x: { datum: 1 } } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as vl.TopLevelSpec;
}

async function main(): Promise<void> {
  const { input, out } = plotArgs('npx tsx bench/plot-ab.ts AB.json [-o OUT.svg]');
  let rows: AbRow[];
  try {
    rows = JSON.parse(readFileSync(input, 'utf8')) as AbRow[];
  } catch (e) {
    console.error(`plot-ab: ${input}: ${(e as Error).message.split('\n')[0]}`);
    process.exit(2);
  }
  if (bars(rows).length === 0) {
    console.error(`plot-ab: ${input} has no timed variants (vs_first)`);
    process.exit(1);
  }
  writeFileSync(out, await vegaLiteToSvg(plotAbSpec(rows)));
  console.log(`wrote ${out} (${bars(rows).length} bars)`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
