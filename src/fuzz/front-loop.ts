// The front-end fuzzing loop shared by the CI test and `npm run fuzz`: each
// round is a generated spec (valid or near-valid), a mutation of an example
// or of a generated spec; the pathological inputs (deep nesting, 1 MB files)
// run once at the start.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkFront, overBudget, type FrontOutcome } from './front.ts';
import { genFrontSpec } from './front-gen.ts';
import { mutate, pathological } from './mutate.ts';
import { makeRng } from './rng.ts';

export interface FrontLoopStats {
  specs: number;
  kernels: number;
  diagnostics: number;
  crashes: number;
  overBudget: number;
  /** Worst time per KB among inputs of at least 16 KB, and worst time of any single input. */
  worstMsPerKb: number;
  worstMs: number;
  seconds: number;
  failures: { text: string; problem: string }[];
}

export function exampleCorpus(): string[] {
  const dir = join(import.meta.dirname, '../../examples');
  return readdirSync(dir).filter((f) => f.endsWith('.attn')).sort().map((f) => readFileSync(join(dir, f), 'utf8'));
}

export interface FrontLoopOptions {
  seed: number;
  seconds: number;
  maxSpecs?: number;
  pathological?: boolean;
  log?: (l: string) => void;
  /** Round indices offset, offset+stride, ... (a `--jobs` worker's share; default 0, 1). */
  offset?: number;
  stride?: number;
}

export function frontLoop(o: FrontLoopOptions): FrontLoopStats {
  const t0 = performance.now();
  const corpus = exampleCorpus();
  const s: FrontLoopStats = { specs: 0, kernels: 0, diagnostics: 0, crashes: 0, overBudget: 0, worstMsPerKb: 0, worstMs: 0, seconds: 0, failures: [] };
  const record = (text: string, out: FrontOutcome, label: string) => {
    s.specs++;
    if (out.kind === 'kernel') s.kernels++;
    else if (out.kind === 'diagnostics') s.diagnostics++;
    s.worstMs = Math.max(s.worstMs, out.ms);
    if (out.bytes >= 16 * 1024) s.worstMsPerKb = Math.max(s.worstMsPerKb, out.ms / (out.bytes / 1024));
    const slow = overBudget(out);
    if (slow) s.overBudget++;
    if (out.kind === 'crash' || slow) {
      if (out.kind === 'crash') s.crashes++;
      const problem = out.kind === 'crash' ? out.problem! : `took ${out.ms.toFixed(0)} ms for ${out.bytes} bytes`;
      if (s.failures.length < 20) s.failures.push({ text: text.length > 2000 ? `${label} (${text.length} chars)` : text, problem });
      o.log?.(`FAIL ${label}: ${problem}`);
    }
  };
  if (o.pathological !== false) {
    for (const p of pathological()) { const text = p.make(); record(text, checkFront(text), p.name); }
  }
  const offset = o.offset ?? 0, stride = o.stride ?? 1;
  // The choice of round kind: the seed's own stream for a single loop, a stream of the worker's own otherwise.
  const r = makeRng(offset === 0 ? o.seed : (o.seed ^ Math.imul(offset, 0x9e3779b1)) >>> 0);
  for (let n = 0; (o.maxSpecs === undefined || s.specs < o.maxSpecs) && performance.now() - t0 < o.seconds * 1000; n++) {
    const i = offset + n * stride;
    const seed = (o.seed * 1_000_003 + i) >>> 0;
    let text: string;
    let label: string;
    const roll = r.next();
    if (roll < 0.4) { text = genFrontSpec(seed, { mistakes: r.chance(0.5) ? 0 : 0.3 }); label = `generated seed ${seed}`; }
    else if (roll < 0.8) { text = mutate(r.pick(corpus), seed, corpus).text; label = `mutated example, seed ${seed}`; }
    else { text = mutate(genFrontSpec(seed, { mistakes: 0 }), seed, corpus).text; label = `mutated generated, seed ${seed}`; }
    record(text, checkFront(text), label);
    if (s.specs % 20_000 === 0) o.log?.(`${s.specs} specs, ${s.crashes} crashes, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  s.seconds = (performance.now() - t0) / 1000;
  return s;
}
