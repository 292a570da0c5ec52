// `analyze` for one spec: per range of distances, E[Z_t] and the expected
// within-range entropy, then the verdict.
//
// E[Z_t]: closed form when the logit is affine in the score and the mask does
// not read it; otherwise importance-sampled Monte-Carlo (see totalByImportance).
// Entropy: always Monte-Carlo, `samples` independent replicas, each drawing a
// fresh S for EVERY key of the range (no key subsampling: the entropy of a
// heavy-tailed softmax is set by its few largest weights, which a subsample
// would miss); the standard error is the spread across replicas / sqrt(samples).
//
// Random streams are derived from (seed, spec name, range, purpose), so a
// spec's numbers do not change when other specs are compared beside it.
import { subSeed } from '../runtime/random.ts';
import type { SpecModel, SampledRange } from './model.ts';
import { distanceRanges, VERDICT_MIN_START, type DistanceRange } from './ranges.ts';
import {
  affineEntropyDraw, closedFormLogZ, combineLogReplicas, meanAndStderr, normals, SoftmaxAccumulator, type Estimate,
} from './estimators.ts';
import { verdict, type Verdict } from './verdict.ts';

export interface AnalyzeOptions {
  sigma: number;
  delta: number;
  /** Monte-Carlo replicas per range (entropy, and E[Z_t] without a closed form). */
  samples: number;
  seed: number;
  /** Called after each range (for a progress bar). */
  onRange?: (done: number, total: number) => void;
}

export interface RangeResult {
  start: number;
  end: number;
  /** Number of keys in the range that the mask keeps (for the reader; not in the JSON). */
  keys: number;
  logTotal: number;
  total: Estimate;
  entropy: Estimate;
}

export type TotalMethod = 'closed-form' | 'importance-sampling';

export interface SpecAnalysis {
  spec: string;
  sigma: number;
  delta: number;
  maxDistance: number;
  samples: number;
  method: TotalMethod;
  ranges: RangeResult[];
  verdict: Verdict;
}

export function analyzeModel(model: SpecModel, opts: AnalyzeOptions): SpecAnalysis {
  const ranges = distanceRanges(opts.delta, model.maxDistance);
  const results: RangeResult[] = [];
  ranges.forEach((r, k) => {
    results.push(analyzeRange(model, r, k, opts));
    opts.onRange?.(k + 1, ranges.length);
  });
  return {
    spec: model.name,
    sigma: opts.sigma,
    delta: opts.delta,
    maxDistance: model.maxDistance,
    samples: opts.samples,
    method: model.closedForm ? 'closed-form' : 'importance-sampling',
    ranges: results,
    verdict: verdict(results.map((r) => ({ start: r.start, logTotal: r.logTotal, entropy: r.entropy.value })), VERDICT_MIN_START),
  };
}

const seedFor = (opts: AnalyzeOptions, model: SpecModel, k: number, what: string, rep: number) =>
  subSeed(opts.seed, `${model.name}:${k}:${what}:${rep}`);

function analyzeRange(model: SpecModel, r: DistanceRange, k: number, opts: AnalyzeOptions): RangeResult {
  const { sigma, samples } = opts;
  const entropies: number[] = [];
  let logTotal: number, totalStderr: number, keys: number;
  if (model.closedForm) {
    const { slope, offset, kept } = model.affineRange(r.lo, r.hi);
    keys = kept.reduce((s, x) => s + x, 0);
    logTotal = closedFormLogZ(slope, offset, kept, sigma);
    totalStderr = 0;
    for (let rep = 0; rep < samples; rep++) {
      entropies.push(affineEntropyDraw(slope, offset, kept, sigma, normals(seedFor(opts, model, k, 'entropy', rep))));
    }
  } else {
    const range = model.prepareRange(r.lo, r.hi);
    const est = totalByImportance(model, range, sigma, samples, (rep) => seedFor(opts, model, k, 'total', rep));
    logTotal = est.value;
    totalStderr = est.stderr;
    keys = est.keys;
    for (let rep = 0; rep < samples; rep++) {
      entropies.push(sampledEntropyDraw(model, range, sigma, normals(seedFor(opts, model, k, 'entropy', rep))));
    }
  }
  return {
    start: r.start, end: r.end, keys, logTotal,
    total: { value: Math.exp(logTotal), stderr: totalStderr },
    entropy: meanAndStderr(entropies),
  };
}

/** Entropy of one draw, evaluating the whole logit and mask IR per key. */
export function sampledEntropyDraw(model: SpecModel, range: SampledRange, sigma: number, z: () => number): number {
  const n = range.hi - range.lo;
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) scores[i] = sigma * z();
  const logits = new Float64Array(n);
  model.sampledLogits(range, scores, logits);
  const acc = new SoftmaxAccumulator();
  for (let i = 0; i < n; i++) acc.add(logits[i]);
  return acc.entropy();
}

/**
 * E[Z] by importance sampling, for any logit: each key's S is drawn from
 * N(mu_d, sigma^2) with mu_d = tilt * sigma^2 * dL/dS at S = 0 (a central
 * difference on the IR), and weighted by phi(S)/q(S). Exponential tilting by
 * the local slope is what tames exp(L) when L grows like a*S with a large a
 * (for an affine logit, tilt 1 is the zero-variance proposal; a naive mean of
 * exp(L) is then badly biased low, as the issue warns). `tilt = 0` is plain
 * Monte-Carlo. Each replica sums one weighted draw per key; the estimate is the
 * mean over replicas and its standard error their spread / sqrt(samples).
 */
export function totalByImportance(
  model: SpecModel, range: SampledRange, sigma: number, samples: number, seedOf: (rep: number) => number, tilt = 1,
): Estimate & { keys: number } {
  const n = range.hi - range.lo;
  const mu = new Float64Array(n);
  if (tilt !== 0) {
    const h = 1e-3 * sigma;
    const up = new Float64Array(n), down = new Float64Array(n);
    model.sampledLogits(range, new Float64Array(n).fill(h), up);
    model.sampledLogits(range, new Float64Array(n).fill(-h), down);
    for (let i = 0; i < n; i++) {
      const d = (up[i] - down[i]) / (2 * h);
      mu[i] = Number.isFinite(d) ? tilt * sigma * sigma * d : 0;
    }
  }
  const s2 = sigma * sigma;
  const scores = new Float64Array(n), logits = new Float64Array(n);
  const logs: number[] = [];
  let keys = 0;
  for (let rep = 0; rep < samples; rep++) {
    const z = normals(seedOf(rep));
    for (let i = 0; i < n; i++) scores[i] = mu[i] + sigma * z();
    model.sampledLogits(range, scores, logits);
    const acc = new SoftmaxAccumulator();
    keys = 0;
    for (let i = 0; i < n; i++) {
      if (logits[i] === -Infinity) continue;
      keys++;
      // ln [exp(L) * phi(S) / q(S)] with q = N(mu, sigma^2).
      acc.add(logits[i] - (mu[i] * scores[i]) / s2 + (mu[i] * mu[i]) / (2 * s2));
    }
    logs.push(acc.logSumExp());
  }
  return { ...combineLogReplicas(logs), keys };
}
