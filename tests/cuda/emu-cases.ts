// The CUDA kernels on the CPU emulator (src/runtime/cuda-emu.ts) against the float64 references, on any machine
// with a host C++ compiler. The GPU runs stay the authority (tests/cuda/runtime.test.ts, backward.test.ts); these
// check, in CI, what every generated kernel computes: layouts, wgmma descriptors and swizzle, the tile walk of
// persistent blocks (2 emulated SMs, so each block walks several items), barriers, and the backward variants under
// evaluation.
//   forward (emu-forward.test.ts): every example, sm_90a (wgmma, warp-specialized) bf16 and f16 and sm_80 (mma.sync)
//            f16, D 64 and 128, and the f32 kernel at D 64; ragged lengths, GQA, decode, Nq < Nk; and at 2100 query
//            rows for three specs, past the 2048 from which D=64 launches its 12-warp long-row kernel; and both
//            passes under the adversarial schedules;
//   backward (emu-backward-*.test.ts, the examples dealt over the files): every example, D 64 and 128, the default
//            kernels (bf16 and f16) and the variant sets of VARIANT_SETS (bf16), each against the same float64 backward
//            reference; and sm_80's defaults through the Ampere backend.
// The emulator runs one thread, so the work is spread over files: vitest runs files, not tests, side by side, and
// these are the suite's longest (vitest.config.ts runs them first).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkBackwardCases, defaultCases } from '../../src/runtime/check.ts';
import { cudaEmulatorProblem, CudaEmuBackend } from '../../src/runtime/cuda-emu.ts';
import { backwardTuningLabel, parseBackwardTuning, type CudaBackwardTuning } from '../../src/compiler/render/cuda-bwd-tuning.ts';
import { EXAMPLES_DIR, formatResult, loadExamples, runCase, shortShapes, withEnv, type Spec } from './suite.ts';

const problem = cudaEmulatorProblem();
if (problem) console.warn(`tests/cuda/emu-*.test.ts: skipped: ${problem}`);

/**
 * Beside the defaults (sm_90a: tables, async-stats, scan-window, wgmma, fused-dq and bulk-dq; at D 64 two-wg, overlap
 * and late-wait except for document's table-scanning mask; at D 128 those three and wgmma-dq; ballot-items where a
 * window ends a key block's live queries), sets that
 * take every other code path: the first kernels (none), the element and scheduling variants on mma.sync (sm_80's defaults), the single pass alone, the wgmma products alone, the four without the single pass,
 * two-warpgroup blocks with a three-stage ring and FlashAttention-3's order in both launches, the same blocks with the
 * single pass and the element code evaluated in full, that order in one-warpgroup blocks, a three-stage ring on
 * mma.sync, late-wait (dV's and dK's products run beside the dQ step) in two-warpgroup blocks with the overlap
 * order, wgmma-dq (the single pass's dQ on wgmma) there too, and both in one-warpgroup blocks with the element code
 * in full (at D = 128 their 32-query items keep dQ on mma.sync: late-wait alone), and bulk-dq's staging from mma.sync's
 * dQ in one-warpgroup blocks with ballot-items, the D = 128 defaults with a persistent dK/dV launch (the emulator
 * has two SMs, so each of its two blocks walks several tiles), and dq-overlap (dQ's product waited for by the next
 * item) on the D = 128 defaults and in one-warpgroup blocks (D = 64's one column block; each build costs about a
 * second); and ballot-items on
 * 2100 keys, where a window leaves dead items after the live ones, there with and without a persistent launch.
 */
const VARIANT_SETS = ['none', 'tables,async-stats,scan-window', 'fused-dq', 'wgmma', 'tables,async-stats,scan-window,wgmma',
  'tables,async-stats,scan-window,wgmma,two-wg,three-stages,overlap', 'wgmma,two-wg,three-stages,fused-dq,scan-window',
  'tables,async-stats,wgmma,overlap', 'tables,async-stats,three-stages',
  'tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait',
  'tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,wgmma-dq', 'wgmma,fused-dq,wgmma-dq,late-wait', 'wgmma,fused-dq,bulk-dq,ballot-items',
  'tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,wgmma-dq,bulk-dq,persistent',
  'tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,wgmma-dq,bulk-dq,dq-overlap', 'tables,async-stats,wgmma,fused-dq,overlap,wgmma-dq,bulk-dq,dq-overlap'];
/** sm_90a's D = 64 defaults for a mask that scans no table and has no window, as a list. */
const DEFAULT_SM90_D64 = 'tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,bulk-dq';
/** sm_90a's D = 128 defaults, as a list. */
const DEFAULT_SM90_D128 = `${DEFAULT_SM90_D64},wgmma-dq`;
const variants: Array<CudaBackwardTuning | undefined> = [undefined, ...VARIANT_SETS.map((v) => parseBackwardTuning(v) as CudaBackwardTuning)];

// Ragged lengths, GQA, decode, Nq < Nk; the 1000-row shapes are the GPU suite's (minutes here).
const shapes = (D: number) => shortShapes(D).filter((s) => Math.max(s.Nq, s.Nk) < 1000);

const hopper = new CudaEmuBackend('sm_90a'), ampere = new CudaEmuBackend('sm_80');
const exampleText = (spec: Spec) => readFileSync(join(EXAMPLES_DIR, `${spec.name}.attn`), 'utf8');

/** Every example's forward tests, and both passes under the adversarial schedules. */
export function defineForwardTests(): void {
  describe.skipIf(!!problem)('CUDA kernels on the emulator vs float64: forward', () => {
    for (const spec of loadExamples()) {
      it(`${spec.name} forward: sm_90a bf16/f16, sm_80 f16, f32; D 64 and 128`, async () => {
        const failed: string[] = [];
        const runs: Array<[CudaEmuBackend, 'f32' | 'f16' | 'bf16', number]> = [
          [hopper, 'bf16', 64], [hopper, 'bf16', 128], [hopper, 'f16', 64], [hopper, 'f16', 128],
          [ampere, 'f16', 64], [ampere, 'f16', 128], [ampere, 'f32', 64],
        ];
        let n = 0;
        for (const [be, dtype, D] of runs) {
          for (const shape of shapes(D)) {
            const r = await runCase(be, spec, dtype, shape);
            n++;
            if (!r.pass) failed.push(`${be.codegen().arch} ${formatResult(r)}`);
          }
        }
        expect(failed).toEqual([]);
        expect(n).toBeGreaterThanOrEqual(7 * 4);
      }, 600_000);

      if (['alibi', 'causal', 'scale_invariant'].includes(spec.name)) {
        it(`${spec.name} forward, long rows: sm_90a bf16 D=64 at 2100 query rows (the 12-warp long-row kernel)`, async () => {
          const r = await runCase(hopper, spec, 'bf16', { B: 1, Hq: 2, Hkv: 1, Nq: 2100, Nk: 2100, D: 64 });
          expect(r.pass, formatResult(r)).toBe(true);
        }, 600_000);
      }

      it(`${spec.name} with warpgroups drifting apart or copies landing at issue (ATTNC_EMU_SCHEDULE, ATTNC_EMU_COPIES): forward, and backward with dq-overlap and persistent, sm_90a bf16`, async () => {
        // One warpgroup runs as far as the kernel's synchronization lets it before the next, or cp.async lands at issue:
        // a write that races a wgmma's reads (its shared-memory operands change before the wait that retires it) stops
        // the launch.
        const text = exampleText(spec);
        const failed: string[] = [];
        let n = 0;
        for (const [schedule, copies] of [['skew', 'late'], ['skew-reverse', 'early'], ['round-robin', 'early']]) {
          await withEnv({ ATTNC_EMU_SCHEDULE: schedule, ATTNC_EMU_COPIES: copies }, async () => {
            for (const shape of [{ B: 1, Hq: 2, Hkv: 1, Nq: 300, Nk: 300, D: 64 }, { B: 2, Hq: 2, Hkv: 2, Nq: 130, Nk: 257, D: 128 }]) {
              const r = await runCase(hopper, spec, 'bf16', shape);
              n++;
              if (!r.pass) failed.push(`${schedule}/${copies} forward ${formatResult(r)}`);
            }
            const sets = [parseBackwardTuning(`${DEFAULT_SM90_D128},dq-overlap,persistent`) as CudaBackwardTuning];
            const cases = [{ B: 1, Hq: 2, Hkv: 1, Nq: 200, Nk: 200, D: 128 }, { B: 2, Hq: 2, Hkv: 2, Nq: 257, Nk: 257, D: 128 }];
            for await (const r of checkBackwardCases(hopper, text, spec.block, spec.lowered, cases, ['bf16'], {}, 3, sets)) {
              n++;
              if (!r.pass) failed.push(`${schedule}/${copies} backward [${r.variant}] ${JSON.stringify(r.shape)}: dQ ${r.errDq.toExponential(2)} dK ${r.errDk.toExponential(2)} dV ${r.errDv.toExponential(2)}, ${r.nanCount} non-finite`);
            }
          });
        }
        expect(failed).toEqual([]);
        expect(n).toBe(12);
      }, 600_000);
    }
  });
}

/** The backward tests of the examples whose index is `part` modulo `parts`. */
export function defineBackwardTests(part: number, parts: number): void {
  describe.skipIf(!!problem)(`CUDA kernels on the emulator vs float64: backward (examples dealt over ${parts} files: file ${part + 1})`, () => {
    for (const spec of loadExamples().filter((_, i) => i % parts === part)) {
      it(`${spec.name} backward: defaults (bf16, f16) and ${VARIANT_SETS.length} variant sets (bf16), D 64 and 128`, async () => {
        const text = exampleText(spec);
        const failed: string[] = [];
        const compared = new Map<string, number>();
        for (const D of [64, 128]) {
          const cases = defaultCases(D).filter((c) => Math.max(c.Nq, c.Nk) < 1000 && (D === 64 || c.Nq > 1 || c.Nk > 1));
          const check = (be: CudaEmuBackend, dtype: 'bf16' | 'f16', sets: Array<CudaBackwardTuning | undefined>) => checkBackwardCases(be, text, spec.block, spec.lowered, cases, [dtype], {}, 3, sets);
          const runs: Array<[string, ReturnType<typeof check>]> = [['sm_90a', check(hopper, 'f16', [undefined])], ['sm_90a', check(hopper, 'bf16', variants)], ['sm_80', check(ampere, 'bf16', [undefined])]];
          for (const [arch, run] of runs) for await (const r of run) {
            const label = `${arch} [${r.variant || 'defaults'}]`;
            if (!r.pass) failed.push(`${label} ${r.dtype} D=${D} ${JSON.stringify(r.shape)}: dQ ${r.errDq.toExponential(2)} dK ${r.errDk.toExponential(2)} dV ${r.errDv.toExponential(2)} (tolerance ${r.tolerance}), ${r.nanCount} non-finite`);
            if (r.ambiguous === 0) compared.set(label, (compared.get(label) ?? 0) + 1);
          }
        }
        expect(failed).toEqual([]);
        expect(compared.size, 'every variant compared somewhere').toBe(variants.length + 1);  // and sm_80's defaults
      }, 600_000);

      if (['sliding_window', 'prefix_lm'].includes(spec.name)) {
        it(`${spec.name} backward, long rows: ballot-items past dead items (2100 keys), one tile a block and persistent, sm_90a bf16 D=64`, async () => {
          const text = exampleText(spec);
          const shapes = [{ B: 1, Hq: 1, Hkv: 1, Nq: 2100, Nk: 2100, D: 64 }, { B: 1, Hq: 2, Hkv: 1, Nq: 1500, Nk: 2100, D: 64 }];
          const sets = ['ballot-items', 'ballot-items,persistent'].map((v) => parseBackwardTuning(`${DEFAULT_SM90_D64},${v}`) as CudaBackwardTuning);
          const results = [];
          for await (const r of checkBackwardCases(hopper, text, spec.block, spec.lowered, shapes, ['bf16'], {}, 3, sets)) results.push(r);
          expect(results.map((r) => [r.variant, r.pass, r.nanCount])).toEqual(shapes.flatMap(() => sets.map((t) => [backwardTuningLabel(t), true, 0])));
        }, 600_000);
      }
    }
  });
}
