// What `analyze` prints and writes: the JSON object of issue 6 and a
// human-readable table.
import type { SpecAnalysis, RangeResult } from './analyze.ts';
import { MAX_OVER_MIN_LIMIT, ENTROPY_SLOPE_LIMIT, type Verdict } from './verdict.ts';
import { VERDICT_MIN_START } from './ranges.ts';

export interface RangeJson {
  start: number;
  end: number;
  total_attention: number;
  total_attention_stderr: number;
  entropy: number;
  entropy_stderr: number;
}

export interface AnalysisJson {
  spec: string;
  sigma: number;
  delta: number;
  ranges: RangeJson[];
  verdict: Verdict;
}

/** The JSON object of one spec, exactly the shape the issue gives. */
export function toJson(a: SpecAnalysis): AnalysisJson {
  return {
    spec: a.spec,
    sigma: a.sigma,
    delta: a.delta,
    ranges: a.ranges.map((r) => ({
      start: r.start,
      end: r.end,
      total_attention: r.total.value,
      total_attention_stderr: r.total.stderr,
      entropy: r.entropy.value,
      entropy_stderr: r.entropy.stderr,
    })),
    verdict: { ...a.verdict },
  };
}

/**
 * JSON text; the first spec is the top-level object, compared specs (if any)
 * go in its `compare` array with the same shape. JSON has no Infinity, so an
 * infinite value (a max/min whose min is 0, an E[Z_t] that overflows) is
 * written as the largest double, 1.7976931348623157e308, which still compares
 * correctly with the limits; NaN becomes null.
 */
export function jsonText(analyses: readonly SpecAnalysis[]): string {
  const [first, ...rest] = analyses.map(toJson);
  const out = rest.length ? { ...first, compare: rest } : first;
  return JSON.stringify(out, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? null : Math.sign(v) * Number.MAX_VALUE) : v), 2) + '\n';
}

const num = (x: number, digits = 4): string => {
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : Number.isNaN(x) ? 'nan' : '-inf';
  if (x === 0) return '0';
  const ax = Math.abs(x);
  return ax >= 1e5 || ax < 1e-3 ? x.toExponential(digits - 1) : Number(x.toPrecision(digits)).toString();
};
const pad = (s: string, w: number) => s.padStart(w);
/** Range ends as the reader would write them: 100000 rather than 1.000e+5. */
const bound = (x: number) => (Number.isInteger(x) && x < 1e9 ? String(x) : Number(x.toPrecision(4)).toString());
const rangeLabel = (r: RangeResult) => `[${bound(r.start)}, ${bound(r.end)})`;
const holds = (b: boolean) => (b ? 'holds' : 'fails');

/** The per-spec table for stdout. */
export function formatAnalysis(a: SpecAnalysis, path: string): string {
  const method = a.method === 'closed-form'
    ? 'closed form (the logit is affine in the score)'
    : `importance-sampled Monte-Carlo, ${a.samples} replicas (the logit is not affine in the score)`;
  const lines = [
    `${a.spec} (${path}): sigma ${a.sigma}, delta ${a.delta}, query at position ${a.maxDistance} (keys at distances 0..${a.maxDistance}), head_dim 64`,
    `  E[Z_t]: ${method}; entropy: mean of ${a.samples} Monte-Carlo replicas; ± is one standard error`,
    `  ${'range'.padEnd(18)}${pad('keys', 9)}${pad('E[Z_t]', 12)}${pad('±', 10)}${pad('entropy', 10)}${pad('±', 8)}`,
  ];
  for (const r of a.ranges) {
    lines.push(`  ${rangeLabel(r).padEnd(18)}${pad(String(r.keys), 9)}${pad(num(r.total.value), 12)}${pad(num(r.total.stderr, 2), 10)}`
      + `${pad(r.entropy.value.toFixed(3), 10)}${pad(r.entropy.stderr.toFixed(3), 8)}`);
  }
  const v = a.verdict;
  lines.push(
    `  verdict over the ranges with t >= ${VERDICT_MIN_START}:`,
    `    total attention max/min ${num(v.total_attention_max_over_min)} (<= ${MAX_OVER_MIN_LIMIT}): scale-invariant total attention ${holds(v.scale_invariant_total_attention)}`,
    `    entropy slope ${v.entropy_slope.toFixed(3)} ± ${entropySlopeStderr(a).toFixed(3)} per ln t (< ${ENTROPY_SLOPE_LIMIT}): scale-invariant sparsity ${holds(v.scale_invariant_sparsity)}`,
  );
  return lines.join('\n') + '\n';
}

/**
 * Standard error of the entropy slope, from the replicas' standard errors
 * (the slope is a fixed linear combination of the range entropies, which are
 * independent). For the reader only: the JSON keeps the issue's shape.
 */
export function entropySlopeStderr(a: SpecAnalysis): number {
  const rs = a.ranges.filter((r) => r.start >= VERDICT_MIN_START);
  const xs = rs.map((r) => Math.log(r.start));
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  return Math.sqrt(rs.reduce((s, r, i) => s + ((xs[i] - mx) / sxx) ** 2 * r.entropy.stderr ** 2, 0));
}

/** One line per spec, when several are compared. */
export function formatSummary(analyses: readonly SpecAnalysis[]): string {
  const w = Math.max(4, ...analyses.map((a) => a.spec.length)) + 2;
  const head = `${'spec'.padEnd(w)}${pad('max/min E[Z_t]', 16)}${pad('entropy slope', 15)}${pad('total attn', 12)}${pad('sparsity', 10)}`;
  const body = analyses.map((a) => {
    const v = a.verdict;
    return `${a.spec.padEnd(w)}${pad(num(v.total_attention_max_over_min), 16)}${pad(v.entropy_slope.toFixed(3), 15)}`
      + `${pad(holds(v.scale_invariant_total_attention), 12)}${pad(holds(v.scale_invariant_sparsity), 10)}`;
  });
  return [head, ...body].join('\n') + '\n';
}
