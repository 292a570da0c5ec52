// Differential checking: random inputs through a backend and through the
// float64 reference, compared row by row (a random sample of rows for long
// sequences, so a 16k-token kernel is checked in seconds).
import type { AttentionBlock } from '../compiler/syntax/ast.ts';
import type { LoweredKernel } from '../compiler/ir/program.ts';
import type { StorageDType } from '../compiler/manifest.ts';
import type { AttentionShape, Backend } from './device.ts';
import { completeCall, runKernel, runReference } from './execute.ts';
import { defaultTables, randomGradient, randomInputs } from './random.ts';
import { compareOutputs, gradientError, sampleRows, TOLERANCE } from './compare.ts';
import { renderKernel, UsageError } from '../compiler/compile.ts';
import { referenceBackward } from './reference-backward.ts';
import { backwardTuningLabel, type CudaBackwardTuning } from '../compiler/render/cuda-bwd-tuning.ts';
import { roundThrough } from './half.ts';

export type CheckCase = AttentionShape;

export interface CheckResult {
  backend: string;
  dtype: StorageDType;
  shape: CheckCase;
  maxAbsErrO: number;
  maxAbsErrLse: number;
  tolerance: number;
  nanCount: number;
  /** How many query rows were compared when not all were. */
  sampledRows?: number;
  pass: boolean;
}

/** Several lengths (including non-multiples of any tile), GQA, decode and cross lengths. */
export function defaultCases(D = 64): CheckCase[] {
  return [
    { B: 1, Hq: 2, Hkv: 2, Nq: 1, Nk: 1, D },
    { B: 1, Hq: 2, Hkv: 2, Nq: 17, Nk: 17, D },
    { B: 2, Hq: 2, Hkv: 1, Nq: 128, Nk: 128, D },
    { B: 1, Hq: 4, Hkv: 2, Nq: 300, Nk: 300, D },
    { B: 1, Hq: 2, Hkv: 1, Nq: 1, Nk: 300, D },
    { B: 1, Hq: 2, Hkv: 2, Nq: 17, Nk: 300, D },
  ];
}

export async function* checkCases(
  backend: Backend, text: string, block: AttentionBlock, lowered: LoweredKernel,
  cases: CheckCase[], dtypes: StorageDType[], params: Record<string, number>, seed: number,
): AsyncGenerator<CheckResult> {
  for (const shape of cases) {
    const inputs = randomInputs(shape, seed);
    const tables = defaultTables(lowered.program.inputs, shape, seed);
    const call = completeCall(lowered, { ...shape, ...inputs, params, tables });
    const rows = sampleRows(shape.Nq, seed);
    const want = runReference(block, call, rows);
    for (const dtype of dtypes) {
      const got = await runKernel(backend, text, block, lowered, call, dtype);
      const cmp = compareOutputs(got, want, shape, rows);
      const tolerance = TOLERANCE[dtype];
      yield {
        backend: backend.name, dtype, shape,
        maxAbsErrO: cmp.maxAbsErrO, maxAbsErrLse: cmp.maxAbsErrLse, tolerance, nanCount: cmp.nanCount,
        sampledRows: rows && rows.length < shape.Nq ? rows.length : undefined,
        pass: cmp.nanCount === 0 && cmp.maxAbsErrO <= tolerance && cmp.maxAbsErrLse <= tolerance,
      };
    }
  }
}

export interface BackwardCheckResult {
  backend: string;
  dtype: StorageDType;
  shape: CheckCase;
  /** gradientError of dQ, dK, dV (max abs error over the reference's largest magnitude, at least 1). */
  errDq: number;
  errDk: number;
  errDv: number;
  tolerance: number;
  nanCount: number;
  /** Pairs at a kink or jump of the logit (referenceBackward): > 0 means not compared, and `pass` stays true. */
  ambiguous: number;
  pass: boolean;
  /** The CUDA backward variants of the kernels checked (backwardTuningLabel; '' for the defaults). */
  variant: string;
}

/**
 * The backward kernels against the float64 backward reference: per case, the forward kernel's O and LSE and a
 * random dO (unit normal) go through the backward kernels; dQ, dK and dV are compared in full (every row: dK and
 * dV sum over all of them). Inputs are rounded to the storage dtype first, for the reference too.
 * `variants`: CUDA backward variants to check as well, each against the same reference (computed once per case);
 * by default the kernels of the backend's own code generation.
 */
export async function* checkBackwardCases(
  backend: Backend, text: string, block: AttentionBlock, lowered: LoweredKernel,
  cases: CheckCase[], dtypes: StorageDType[], params: Record<string, number>, seed: number,
  variants?: Array<CudaBackwardTuning | undefined>,
): AsyncGenerator<BackwardCheckResult> {
  if (!backend.backward) throw new UsageError(`the ${backend.name} backend has no backward kernels yet (--backend webgpu, cuda or torch)`);
  const codegen = backend.codegen();
  const own = codegen.target === 'cuda' ? codegen.cudaBackward : undefined;
  for (const shape of cases) {
    const tables = defaultTables(lowered.program.inputs, shape, seed);
    for (const dtype of dtypes) {
      const round = (x: Float32Array) => (dtype === 'f32' ? x : roundThrough(dtype, x));
      const { q, k, v } = randomInputs(shape, seed);
      const dO = round(randomGradient(shape, seed));
      const call = completeCall(lowered, { ...shape, q: round(q), k: round(k), v: round(v), params, tables });
      const fwd = await runKernel(backend, text, block, lowered, call, dtype);
      const want = referenceBackward(block, call, dO);
      for (const tuning of variants ?? [own]) {
        const kernel = renderKernel(text, block, lowered, { ...codegen, cudaBackward: tuning, dtype, headDim: shape.D, limits: backend.limits(), pass: 'backward' });
        const got = await backend.backward(kernel, call, { o: fwd.o, lse: fwd.lse, dO });
        const [dq, dk, dv] = [gradientError(got.dq, want.dq), gradientError(got.dk, want.dk), gradientError(got.dv, want.dv)];
        const tolerance = TOLERANCE[dtype];
        const nanCount = dq.nanCount + dk.nanCount + dv.nanCount;
        yield {
          backend: backend.name, dtype, shape, errDq: dq.err, errDk: dk.err, errDv: dv.err, tolerance, nanCount, ambiguous: want.ambiguous,
          pass: want.ambiguous > 0 || (nanCount === 0 && Math.max(dq.err, dk.err, dv.err) <= tolerance), variant: backwardTuningLabel(tuning),
        };
      }
    }
  }
}
