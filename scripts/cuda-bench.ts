// Times generated CUDA kernels through the Node runtime (events around each
// launch, median of 20 after 3 warm-ups). FLOPs counted as KERNELS.md does:
// 4*B*H*N*N*D, halved for causal masks.
//   npx tsx scripts/cuda-bench.ts [--specs causal,scale_invariant] [--dtype bf16] [--D 128]
//     [--shapes 2x16384,8x4096] [--H 16] [--variants 4x64,8x64x1,4x64x2,12x128,8x128p,8x192p3]
//     (warps x BN x m16-tiles per warp; on Hopper these tile the wgmma kernel, where a
//     suffix p adds a producer warpgroup, p3 with 3 stages, p3o (po) overlaps softmax with P V; ATTNC_CUDA_KERNEL=mma: the mma.sync one)
import { loadExamples } from '../tests/cuda/suite.ts';
import { renderCuda } from '../src/compiler/render/cuda.ts';
import { openCuda } from '../src/runtime/cuda.ts';
import { defaultTables, randomInputs } from '../src/runtime/random.ts';
import type { StorageDType } from '../src/compiler/manifest.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const specs = arg('specs', 'causal,scale_invariant').split(',');
const dtype = arg('dtype', 'bf16') as StorageDType;
const D = Number(arg('D', '128'));
const H = Number(arg('H', '16'));
const shapes = arg('shapes', '2x16384').split(',').map((s) => s.split('x').map(Number));
const variants = arg('variants', '4x64').split(',').map((s) => {
  const m = /^(\d+)x(\d+)(?:x(\d+))?(?:p(\d)?(o)?)?$/.exec(s);
  if (!m) throw new Error(`--variants: ${s}: expected WARPSxBN[xMT][p[STAGES][o]]`);
  return { warps: Number(m[1]), bn: Number(m[2]), mt: Number(m[3] ?? 1), producer: s.includes('p'), stages: Number(m[4] ?? 2), overlap: m[5] === 'o', label: s };
});

const be = await openCuda();
console.log(be.describe());
try {
  for (const [B, N] of shapes) {
    const shape = { B, Hq: H, Hkv: H, Nq: N, Nk: N, D };
    const { q, k, v } = randomInputs(shape, 7);
    for (const spec of loadExamples(specs)) {
      const params = Object.fromEntries(spec.lowered.program.params.map((p) => [p.name, p.default]));
      for (const { warps, bn, mt, producer, stages, overlap, label } of variants) {
        const tables = defaultTables(spec.lowered.program.inputs, shape, 7);  // ALiBi slopes, document ids, ...
        let kernel, t;
        try {
          kernel = renderCuda(spec.lowered, { dtype, headDim: D, hash: 'bench', version: 'bench', tiles: { warps, bn, mt, producer, stages, overlap }, arch: be.codegen().arch });
          t = await be.time(kernel, { ...shape, q, k, v, params, tables }, 20, 3);
        } catch (e) {
          // One variant that does not fit (shared memory, a tile rule) must not end the sweep.
          console.log(`${spec.name.padEnd(20)} ${dtype} B${B} H${H} N${N} D${D} ${label}: failed: ${(e as Error).message.split('\n')[0]}`);
          continue;
        }
        const causal = !kernel.manifest.analysis.maskFree;
        const flops = (4 * B * H * N * N * D) / (causal ? 2 : 1);
        console.log(`${spec.name.padEnd(20)} ${dtype} B${B} H${H} N${N} D${D} ${kernel.manifest.abi.kernel} ${label.padEnd(9)} warps${warps} BN${bn} MT${mt}: median ${t.medianMs.toFixed(3)} ms  ${(flops / t.medianMs / 1e9).toFixed(1)} TFLOP/s (min ${t.minMs.toFixed(3)} ms)`);
      }
    }
  }
} finally {
  be.dispose();
}
