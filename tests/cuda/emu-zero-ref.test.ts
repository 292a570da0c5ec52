// The zero reference (CudaTiles.zeroRef) under logits past its window, on the CPU emulator against float64.
// Random inputs keep every logit of the examples inside the window, so there the zero reference's path always
// holds. Here scale_invariant gets a spike on the diagonal, 100 nats (144 in log2 units) at t = 0 and gone a few
// keys away: a row's first tiles set its reference to 0, and the tile with the diagonal then holds a logit whose 2^x
// overflows f32 (bf16) and f16 alike. A kernel whose check lets that tile through returns inf or NaN; the check must
// send the warp down the general path, which moves the reference. Rows whose first tile holds the diagonal start
// on the general path. Both checks are run: the packed P's (CudaTiles.packedRefCheck, diet letter k; the default
// where the row sums are on the tensor cores) and the row max per logit (-k).
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/compiler/syntax/parse.ts';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { analyzeProgram } from '../../src/compiler/passes/analyze.ts';
import { cudaEmulatorProblem, CudaEmuBackend } from '../../src/runtime/cuda-emu.ts';
import { formatResult, runCase, withEnv, type Spec } from './suite.ts';

const problem = cudaEmulatorProblem();
if (problem) console.warn(`tests/cuda/emu-zero-ref.test.ts: skipped: ${problem}`);

const SPIKE = `attention si_spike {
  param tau = 10.0
  let t = q_idx - kv_idx
  let l = log1p(t / tau)
  score = score * sqrt(2 * l + 1) - 2 * l + 100 * exp(0 - t)
  mask causal
}`;

function spikeSpec(): Spec {
  const { file } = parseSpec('si_spike.attn', SPIKE);
  const block = file!.blocks[0];
  const program = lowerBlock(block);
  return { name: 'si_spike', block, lowered: { program, analysis: analyzeProgram(program) } };
}

// The long-row kernel's shape (12 warps, BN 96, 3 stages, producer, overlap, persistent) on 3 blocks, so that each
// walks several items; 600 rows leave rows whose diagonal is in their first tile and rows where it comes later.
const TILES = '12,96,1,1,3,1,1,1';
const SHAPES = [{ B: 1, Hq: 2, Hkv: 1, Nq: 600, Nk: 600, D: 64 }, { B: 1, Hq: 1, Hkv: 1, Nq: 300, Nk: 700, D: 64 }];

describe.skipIf(!!problem)('the zero reference past its window (CUDA emulator vs float64)', () => {
  const hopper = new CudaEmuBackend('sm_90a');
  const spec = spikeSpec();
  // bf16 takes the zero reference by default in this shape; f16 only when asked (its window is [0, 8]).
  const runs: Array<[string, 'bf16' | 'f16', string]> = [
    ['bf16, the row max per logit', 'bf16', '+zw-k'],
    ['bf16, the packed P', 'bf16', '+zwk'],
    ['f16, the row max per logit', 'f16', '+zw-k'],
    ['f16, the packed P', 'f16', '+zwk'],
    // --exact-lse: the row sums in the softmax, so no packed check
    ['bf16, the row max per logit, row sums in the softmax', 'bf16', '+zw-m'],
  ];
  for (const [label, dtype, diet] of runs) {
    it(`${label}: a 100-nat spike on the diagonal after the reference went to 0`, async () => {
      const failed: string[] = [];
      for (const shape of SHAPES) {
        const r = await withEnv({ ATTNC_CUDA_TILES: TILES, ATTNC_CUDA_DIET: diet, ATTNC_CUDA_MAX_BLOCKS: '3' }, () => runCase(hopper, spec, dtype, shape));
        if (!r.pass) failed.push(formatResult(r));
      }
      expect(failed).toEqual([]);
    }, 300_000);
  }
});
