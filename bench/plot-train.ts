// The training-step bench (bench/train.py) as bars: ours against FlexAttention in TFLOP/s, one panel per head dim
// and length, a pair of bars per spec with ours/Flex written beside it. Several result files merge, a later file's
// row replacing an earlier one's for the same spec, D and N (e.g. one head dim re-timed after a change of defaults);
// the subtitle names the files. With --variant, a row timed with that variant set (train.py --variants) shows the
// variant's timing as ours (e.g. defaults chosen after the run); rows without it show the run's defaults.
// Rendered headless to SVG like bench/plot.ts.
//   npx tsx bench/plot-train.ts A-train.json [B-train.json ...] [--variant SET] -o train.svg
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type * as vl from 'vega-lite';
import { vegaLiteToSvg } from '../src/analysis/svg.ts';

export interface TrainRow { spec: string; D: number; N: number; dtype: string; ours_tflops?: number; flex_tflops?: number; variants?: Record<string, { tflops?: number }> }
interface Bar { panel: string; spec: string; who: 'attnc' | 'FlexAttention'; tflops: number; ratio: number }

/**
 * The rows of several train.py results, later files first in line; rows without both timings are left out. With
 * `variant`, a row that timed it takes the variant's TFLOP/s as ours.
 */
export function mergeTrainRows(files: TrainRow[][], variant?: string): TrainRow[] {
  const byKey = new Map<string, TrainRow>();
  for (const rows of files) for (const row of rows) {
    const v = variant ? row.variants?.[variant]?.tflops : undefined;
    const r = typeof v === 'number' ? { ...row, ours_tflops: v } : row;
    if (typeof r.ours_tflops === 'number' && typeof r.flex_tflops === 'number') byKey.set(`${r.spec}/${r.D}/${r.N}/${r.dtype}`, r);
  }
  return [...byKey.values()];
}

export function trainBars(rows: TrainRow[]): Bar[] {
  return rows.flatMap((r) => {
    const panel = `${r.dtype} D=${r.D} N=${r.N}`, ratio = +(r.ours_tflops! / r.flex_tflops!).toFixed(2);
    return [{ panel, spec: r.spec, who: 'attnc' as const, tflops: +r.ours_tflops!.toFixed(1), ratio },
      { panel, spec: r.spec, who: 'FlexAttention' as const, tflops: +r.flex_tflops!.toFixed(1), ratio }];
  });
}

export function plotTrainSpec(rows: TrainRow[], sources: string[]): vl.TopLevelSpec {
  const data = trainBars(rows);
  const specs = [...new Set(rows.map((r) => r.spec))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Training step (forward + backward): attnc vs FlexAttention', subtitle: `TFLOP/s (3.5x the forward's FLOPs over kept pairs); label: attnc / Flex. From ${sources.join(', ')}` },
    data: { values: data },
    config: { font: 'sans-serif' },
    facet: { field: 'panel', type: 'nominal', title: null, columns: 2 },
    spec: {
      width: 300,
      height: { step: 12 },
      encoding: {
        y: { field: 'spec', type: 'nominal', title: null, sort: specs },
        yOffset: { field: 'who', type: 'nominal', sort: ['attnc', 'FlexAttention'] },
      },
      layer: [
        { mark: { type: 'bar' }, encoding: {
          x: { field: 'tflops', type: 'quantitative', title: 'TFLOP/s' },
          color: { field: 'who', type: 'nominal', title: null, scale: { domain: ['attnc', 'FlexAttention'], range: ['#1f77b4', '#ff7f0e'] } },
          tooltip: [{ field: 'spec' }, { field: 'who' }, { field: 'tflops' }, { field: 'ratio', title: 'attnc / Flex' }],
        } },
        { mark: { type: 'text', align: 'left', dx: 3, fontSize: 9 }, transform: [{ filter: "datum.who == 'attnc'" }], encoding: {
          x: { field: 'tflops', type: 'quantitative' },
          text: { field: 'ratio', type: 'quantitative', format: '.2f' },
        } },
      ],
    },
  } as vl.TopLevelSpec;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const o = args.indexOf('-o');
  const out = o >= 0 ? args.splice(o, 2)[1] : undefined;
  const vi = args.indexOf('--variant');
  const variant = vi >= 0 ? args.splice(vi, 2)[1] : undefined;
  if (!args.length || !out || (vi >= 0 && !variant)) {
    console.error('usage: npx tsx bench/plot-train.ts TRAIN.json [MORE.json ...] [--variant SET] -o OUT.svg');
    process.exit(2);
  }
  const files: TrainRow[][] = [];
  for (const f of args) {
    try {
      files.push((JSON.parse(readFileSync(f, 'utf8')) as { rows: TrainRow[] }).rows ?? []);
    } catch (e) {
      console.error(`plot-train: ${f}: ${(e as Error).message.split('\n')[0]}`);
      process.exit(2);
    }
  }
  const rows = mergeTrainRows(files, variant);
  if (!rows.length) {
    console.error('plot-train: no row with both timings (ours_tflops, flex_tflops)');
    process.exit(1);
  }
  writeFileSync(out, await vegaLiteToSvg(plotTrainSpec(rows, args.map((f) => basename(f)))));
  console.log(`wrote ${out} (${rows.length} rows)`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
