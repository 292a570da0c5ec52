// The two-panel plot of `analyze --svg`: E[Z_t] and the expected within-range
// entropy against the range start t (log axis), one line per spec. A vega-lite
// spec, compiled to vega and rendered headless to SVG (no canvas, no DOM).
import type * as vl from 'vega-lite';
import { vegaLiteToSvg } from './svg.ts';
import type { SpecAnalysis } from './analyze.ts';

/** E[Z_t] below this is drawn off the bottom of the log axis (ALiBi's total attention underflows to 1e-200 and 0). */
export const TOTAL_FLOOR = 1e-2;

interface Row {
  spec: string;
  start: number;
  total: number;
  totalLo: number;
  totalHi: number;
  entropy: number;
  entropyLo: number;
  entropyHi: number;
}

function rows(analyses: readonly SpecAnalysis[]): Row[] {
  return analyses.flatMap((a) => a.ranges.map((r) => ({
    spec: a.spec,
    start: r.start,
    total: r.total.value,
    totalLo: Math.max(r.total.value - 2 * r.total.stderr, Number.MIN_VALUE),
    totalHi: r.total.value + 2 * r.total.stderr,
    entropy: r.entropy.value,
    entropyLo: r.entropy.value - 2 * r.entropy.stderr,
    entropyHi: r.entropy.value + 2 * r.entropy.stderr,
  })));
}

export function plotSpec(analyses: readonly SpecAnalysis[]): vl.TopLevelSpec {
  const { sigma, delta } = analyses[0];
  const starts = [...new Set(analyses.flatMap((a) => a.ranges.map((r) => r.start)))];
  const x = {
    field: 'start', type: 'quantitative', scale: { type: 'log' },
    title: `range start t (keys at distances [t, ${delta}t))`, axis: { values: starts, format: '~s' },
  } as const;
  const color = { field: 'spec', type: 'nominal', title: 'spec', sort: analyses.map((a) => a.spec) } as const;
  const line = { type: 'line', point: true, clip: true } as const;
  const errorbar = (lo: string, hi: string) => ({
    mark: { type: 'rule', clip: true },
    encoding: { x, y: { field: lo, type: 'quantitative' }, y2: { field: hi }, color },
  }) as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Scale-invariance conditions', subtitle: `Gaussian scores, sigma = ${sigma}, delta = ${delta}; bars: ±2 standard errors; E[Z_t] below ${TOTAL_FLOOR} is not drawn` },
    data: { values: rows(analyses) },
    config: { font: 'sans-serif' },
    hconcat: [
      {
        title: 'E[Z_t]: total unnormalised attention per range',
        width: 320, height: 240,
        transform: [{ filter: `datum.total >= ${TOTAL_FLOOR}` }],
        layer: [
          {
            mark: line,
            encoding: {
              x,
              y: { field: 'total', type: 'quantitative', scale: { type: 'log' }, title: 'E[Z_t] (log)', axis: { format: '~g', grid: true, tickCount: 8 } },
              color,
            },
          },
          errorbar('totalLo', 'totalHi'),
        ],
      },
      {
        title: 'E[H_t]: entropy within the range (nats)',
        width: 320, height: 240,
        layer: [
          { mark: line, encoding: { x, y: { field: 'entropy', type: 'quantitative', title: 'expected entropy (nats)' }, color } },
          errorbar('entropyLo', 'entropyHi'),
        ],
      },
    ],
  } as vl.TopLevelSpec;
}

export async function plotSvg(analyses: readonly SpecAnalysis[]): Promise<string> {
  return vegaLiteToSvg(plotSpec(analyses));
}
