// Differential tests of the CUDA backward kernels (render/cuda-bwd.ts) on the CUDA device, when there is one:
// for every example, bf16 and f16, D 64 and 128, the forward kernel's O and LSE and a random dO go through the two
// backward launches, and dQ, dK, dV are compared with the float64 backward reference (runtime/reference-backward.ts,
// whose d logit / d(q·k) comes from central differences of the AST, not from the IR derivative the kernels use).
// Shapes: ragged lengths, GQA (dK, dV summed over the query heads of a kv head), decode, Nq < Nk. Skipped, with the
// reason, on a machine without a CUDA driver, device or NVRTC.
// ATTNC_CUDA_BWD_VARIANTS='tables,async-stats;wgmma' also checks those sets of backward variants under evaluation
// (render/cuda-bwd.ts), each case against the same float64 reference (scripts/gpu-verify.sh sets it).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBackwardCases, defaultCases } from '../../src/runtime/check.ts';
import { parseBackwardTuning, type CudaBackwardTuning } from '../../src/compiler/render/cuda-bwd-tuning.ts';
import { EXAMPLES_DIR, loadExamples, openTestCuda } from './suite.ts';

const { backend, reason } = await openTestCuda('tests/cuda/backward.test.ts');
/** The defaults (undefined: the arch's), then each set of ATTNC_CUDA_BWD_VARIANTS (';'-separated comma lists; 'none': the first kernels). */
const variants: Array<CudaBackwardTuning | undefined> = [undefined, ...(process.env.ATTNC_CUDA_BWD_VARIANTS ?? '').split(';').filter(Boolean).map((v) => {
  const t = parseBackwardTuning(v);
  if (typeof t === 'string') throw new Error(`ATTNC_CUDA_BWD_VARIANTS: ${t}`);
  return t;
})];
afterAll(() => backend?.dispose());

describe.skipIf(!backend)(`CUDA backward vs float64 reference${reason ? ` (skipped: ${reason})` : ''}`, () => {
  for (const spec of loadExamples()) {
    for (const D of [64, 128]) {
      it(`${spec.name} D=${D}`, async () => {
        const text = readFileSync(join(EXAMPLES_DIR, `${spec.name}.attn`), 'utf8');
        // D=128: fewer shapes (the float64 reference is the slow part), the GQA and ragged ones kept.
        const cases = D === 64 ? defaultCases(64) : defaultCases(128).filter((c) => c.Nq !== 1 || c.Nk !== 1);
        const compared = new Map<string, number>();
        const failed: string[] = [];  // every case and variant runs, so that one run reports all that fail
        for await (const r of checkBackwardCases(backend!, text, spec.block, spec.lowered, cases, ['bf16', 'f16'], {}, 3, variants)) {
          const line = `${r.variant ? `[${r.variant}] ` : ''}${r.dtype} ${JSON.stringify(r.shape)}: dQ ${r.errDq.toExponential(2)} dK ${r.errDk.toExponential(2)} dV ${r.errDv.toExponential(2)} (tolerance ${r.tolerance}), ${r.nanCount} non-finite, ${r.ambiguous} ambiguous`;
          console.log(`${spec.name} D=${D} ${line}`);
          if (!r.pass) failed.push(line);
          if (r.ambiguous === 0) compared.set(r.variant, (compared.get(r.variant) ?? 0) + 1);
        }
        expect(failed).toEqual([]);
        expect(compared.size, 'every variant compared somewhere').toBe(variants.length);
      }, 300_000);
    }
  }
});
