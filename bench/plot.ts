// TFLOP/s against N for every spec (columns) and dtype x head dim (rows):
// our kernel, FlexAttention and SDPA causal (the roof), from a results JSON of
// bench/run.py. Rendered headless to SVG the way src/analysis/plot.ts does.
//   npx tsx bench/plot.ts bench/results/h100-YYYY-MM-DD.json [-o out.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import type * as vl from 'vega-lite';
import { vegaLiteToSvg } from '../src/analysis/svg.ts';

interface ResultRow {
  spec: string;
  D: number;
  N: number;
  dtype: string;
  ours_tflops?: number | null;
  flex_tflops?: number | null;
  sdpa_tflops?: number | null;
}
interface Results {
  meta: { gpu?: string; date?: string; tokens?: number; heads?: number; repeats?: number; build?: { attnc_rev?: string } };
  rows: ResultRow[];
}
interface Point { spec: string; config: string; N: number; impl: string; tflops: number }

const IMPLS = ['ours (attnc)', 'FlexAttention', 'SDPA causal (roof)'] as const;

export function points(res: Results): Point[] {
  const out: Point[] = [];
  for (const r of res.rows) {
    const config = `${r.dtype}, D=${r.D}`;
    const vals: [string, number | null | undefined][] = [[IMPLS[0], r.ours_tflops], [IMPLS[1], r.flex_tflops], [IMPLS[2], r.sdpa_tflops]];
    for (const [impl, v] of vals) {
      if (typeof v === 'number' && Number.isFinite(v)) out.push({ spec: r.spec, config, N: r.N, impl, tflops: +v.toFixed(1) });
    }
  }
  return out;
}

export function plotSpec(res: Results): vl.TopLevelSpec {
  const data = points(res);
  const specs = [...new Set(res.rows.map((r) => r.spec))];
  const configs = [...new Set(data.map((p) => p.config))].sort();
  const lens = [...new Set(data.map((p) => p.N))].sort((a, b) => a - b);
  const m = res.meta;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `attnc vs FlexAttention vs SDPA, forward — ${m.gpu ?? 'GPU'}`,
      subtitle: `B*N = ${m.tokens ?? 32768}, H = ${m.heads ?? 16}; TFLOP/s over kept (q, k) pairs; median of ${m.repeats ?? '?'} CUDA-event timings; ${m.date ?? ''}; attnc ${(m.build?.attnc_rev ?? '?').slice(0, 10)}${data.some((p) => p.impl === IMPLS[1]) ? '' : '; FlexAttention: no measurement in this file'}`,
    },
    data: { values: data },
    config: { font: 'sans-serif' },
    facet: {
      row: { field: 'config', type: 'nominal', title: null, sort: configs },
      column: { field: 'spec', type: 'nominal', title: null, sort: specs },
    },
    spec: {
      width: 150,
      height: 130,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'N', type: 'quantitative', scale: { type: 'log', domain: [lens[0], lens[lens.length - 1]], nice: false }, axis: { values: lens, format: 'd', labelAngle: -30, labelOverlap: false }, title: 'N' },
        y: { field: 'tflops', type: 'quantitative', title: 'TFLOP/s', scale: { zero: true } },
        color: { field: 'impl', type: 'nominal', title: null, legend: { orient: 'top' }, sort: [...IMPLS], scale: { domain: [...IMPLS], range: ['#d62728', '#1f77b4', '#7f7f7f'] } },
        tooltip: [{ field: 'impl' }, { field: 'N' }, { field: 'tflops' }],
      },
    },
  } as vl.TopLevelSpec;
}

export async function plotSvg(res: Results): Promise<string> {
  return vegaLiteToSvg(plotSpec(res));
}

/** The plot scripts' command line, INPUT.json [-o OUT.svg] (OUT defaults to INPUT with .svg); exits 2 without INPUT. */
export function plotArgs(usage: string): { input: string; out: string } {
  const args = process.argv.slice(2);
  const o = args.indexOf('-o');
  const outArg = o >= 0 ? args.splice(o, 2)[1] : undefined;
  const input = args[0];
  if (!input) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  return { input, out: outArg ?? input.replace(/\.json$/, '') + '.svg' };
}

async function main(): Promise<void> {
  const { input, out } = plotArgs('npx tsx bench/plot.ts RESULTS.json [-o OUT.svg]');
  const res = JSON.parse(readFileSync(input, 'utf8')) as Results;
  writeFileSync(out, await plotSvg(res));
  console.log(`wrote ${out} (${points(res).length} points)`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
