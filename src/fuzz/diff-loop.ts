// The differential fuzzing loop shared by the CI test and `npm run fuzz --
// --kind diff`: one random spec -> one kernel (one dtype, one head dim) ->
// several random shapes (compiling dominates, so each kernel runs several
// shapes). A "program" is one such kernel checked on at least one shape; a
// "case" is one shape of it. A failure is shrunk and saved under
// tests/regressions/. `--jobs N` (src/fuzz/parallel.ts) runs N of these
// loops in worker processes, worker k taking spec indices k, k+N, k+2N, ...
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StorageDType } from '../compiler/manifest.ts';
import type { Backend } from '../runtime/device.ts';
import { genDiffSpec } from './diff-gen.ts';
import { compileDiff, randomParams, randomShape, runBackwardCase, runCase, shrinkCase, type DiffOutcome } from './diff-run.ts';
import { makeRng, weighted } from './rng.ts';

export interface DiffLoopOptions {
  seed: number;
  /** Stop after this many seconds (checked between kernels). */
  seconds: number;
  maxSpecs?: number;
  /** Spec indices offset, offset+stride, ... (a worker's share of the seed's stream; default 0, 1). */
  offset?: number;
  stride?: number;
  shapesPerKernel?: number;
  maxLen?: number;
  /** Max B*Hq*Nq*Nk of one case (the reference costs O(that * D)). */
  maxWork?: number;
  /** Weights of head dims 32, 64, 128 (lavapipe compiles D = 128 slowly). */
  dWeights?: [number, number, number];
  /** Also run the backward kernels on each case and compare dQ, dK, dV (runBackwardCase). */
  backward?: boolean;
  /** Where failing cases are written (null: not written). */
  saveDir?: string | null;
  log?: (line: string) => void;
  /** Called before each spec is compiled (the parallel driver reports the spec a crashed worker was on). */
  onSpec?: (specSeed: number, stats: DiffLoopStats) => void;
}

export interface DiffLoopStats {
  backend: string;
  specs: number;
  kernels: number;
  /** Kernels (spec x dtype x head dim) that ran at least one shape to a verdict (pass, mismatch or a backend error). */
  programs: number;
  /** Programs by `dtype/D<head dim>`. */
  programsBy: Record<string, number>;
  cases: number;
  mismatches: number;
  /** Backward: cases not compared because the reference had pairs at a kink or jump of the logit. */
  ambiguous: number;
  worstRatio: number;
  failures: { file: string | null; spec: string; outcome: DiffOutcome }[];
  seconds: number;
}

export async function diffLoop(backend: Backend, o: DiffLoopOptions): Promise<DiffLoopStats> {
  const t0 = performance.now();
  const stats: DiffLoopStats = { backend: backend.describe(), specs: 0, kernels: 0, programs: 0, programsBy: {}, cases: 0, mismatches: 0, ambiguous: 0, worstRatio: 0, failures: [], seconds: 0 };
  // The CUDA backward kernels take f16/bf16 only (tensor cores); f32 gradients are WebGPU's.
  const dtypes = o.backward && backend.codegen().target === 'cuda' ? backend.dtypes().filter((d) => d !== 'f32') : backend.dtypes();
  const log = o.log ?? (() => {});
  const offset = o.offset ?? 0, stride = o.stride ?? 1;
  const run = o.backward ? runBackwardCase : runCase;
  for (let n = 0; (o.maxSpecs === undefined || n < o.maxSpecs) && performance.now() - t0 < o.seconds * 1000; n++) {
    const i = offset + n * stride;
    const specSeed = (o.seed * 100_003 + i) >>> 0;
    o.onSpec?.(specSeed, stats);
    const r = makeRng(specSeed ^ 0x5bd1e995);
    // Extreme magnitudes: tiny logits (near-uniform attention) and large ones (near-argmax).
    const qScale = weighted(r, [[8, 1], [1, 1e-3], [1, 3]]);
    const spec = genDiffSpec(specSeed, { scoreBound: 7 * qScale });
    const compiled = compileDiff(spec);
    stats.specs++;
    const D = weighted(r, [[o.dWeights?.[0] ?? 6, 32], [o.dWeights?.[1] ?? 3, 64], [o.dWeights?.[2] ?? 1, 128]]);
    const dtype: StorageDType = weighted(r, dtypes.map((d) => [d === 'f32' ? 3 : 1, d] as const));
    stats.kernels++;
    const program = () => {
      stats.programs++;
      const key = `${dtype}/D${D}`;
      stats.programsBy[key] = (stats.programsBy[key] ?? 0) + 1;
    };
    for (let j = 0; j < (o.shapesPerKernel ?? 4); j++) {
      const shape = randomShape(r, D, o.maxLen ?? 600, o.maxWork ?? 400_000);
      const dc = { shape, dtype, seed: r.int(1, 1 << 30), qScale, params: randomParams(r, spec.params) };
      let out: DiffOutcome;
      try {
        out = await run(backend, compiled, dc);
      } catch (e) {
        log(`spec ${specSeed}: the backend threw: ${(e as Error).message.split("\n")[0]}\n${spec.text}`);
        stats.mismatches++;
        stats.failures.push({ file: null, spec: spec.text, outcome: { case: dc, cmp: null as never, pass: false, tolerance: 0 } });
        if (j === 0) program();
        break;
      }
      stats.cases++;
      if (j === 0) program();
      stats.worstRatio = Math.max(stats.worstRatio, Math.max(out.cmp.maxAbsErrO, out.cmp.maxAbsErrLse) / out.tolerance);
      if (out.grad?.ambiguous) stats.ambiguous++;
      else if (out.grad) stats.worstRatio = Math.max(stats.worstRatio, Math.max(out.grad.dq, out.grad.dk, out.grad.dv) / out.tolerance);
      if (!out.pass) {
        stats.mismatches++;
        const small = await shrinkCase(backend, compiled, out, 24, run);
        const file = o.saveDir === null ? null : saveRegression(o.saveDir ?? 'tests/regressions', `diff-${backend.name}-${specSeed}`, spec.text, small);
        log(`MISMATCH spec seed ${specSeed} (${dtype}, ${JSON.stringify(small.case.shape)}): O err ${small.cmp.maxAbsErrO.toExponential(2)}, LSE err ${small.cmp.maxAbsErrLse.toExponential(2)}, NaNs ${small.cmp.nanCount}, ref NaNs ${small.cmp.refNanCount}${small.grad ? `, dQ/dK/dV err ${[small.grad.dq, small.grad.dk, small.grad.dv].map((x) => x.toExponential(2)).join('/')}, gradient NaNs ${small.grad.nanCount}` : ''}${file ? ` -> ${file}` : ''}\n${spec.text}`);
        stats.failures.push({ file, spec: spec.text, outcome: small });
        break;
      }
    }
    if (stats.specs % 10 === 0) log(`${stats.specs} specs, ${stats.programs} programs, ${stats.cases} cases, ${stats.mismatches} mismatches, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return stats;
}

/** Writes NAME.attn and NAME.json (the case) for tests/regressions/replay.test.ts. */
export function saveRegression(dir: string, name: string, spec: string, o: DiffOutcome): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.attn`), spec);
  const json = { ...o.case, found: { maxAbsErrO: o.cmp?.maxAbsErrO, maxAbsErrLse: o.cmp?.maxAbsErrLse, nanCount: o.cmp?.nanCount, tolerance: o.tolerance } };
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  return join(dir, `${name}.attn`);
}
