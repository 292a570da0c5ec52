// Differential checking: random inputs through a backend and through the
// float64 reference, compared row by row (a random sample of rows for long
// sequences, so a 16k-token kernel is checked in seconds).
import type { AttentionBlock } from '../compiler/syntax/ast.ts';
import type { LoweredKernel } from '../compiler/ir/program.ts';
import type { StorageDType } from '../compiler/manifest.ts';
import type { AttentionShape, Backend } from './device.ts';
import { completeCall, runKernel, runReference } from './execute.ts';
import { defaultTables, randomInputs } from './random.ts';
import { compareOutputs, sampleRows, TOLERANCE } from './compare.ts';

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
