// Times WGSL kernels through the Node WebGPU runtime on the default adapter (on a machine without a GPU, Mesa's
// lavapipe): each call end to end (upload, dispatch, read back), the median of --iters after one warm-up. For
// comparing kernel changes on one machine, not for GPU figures.
//   npx tsx scripts/webgpu-bench.ts [--specs causal,scale_invariant] [--dtype f32] [--D 64]
//     [--shapes 1x8x2x1x4096,...]   (B x Hq x Hkv x Nq x Nk)   [--iters 5]   [--backward]
// --backward times the backward kernels (dQ, dK, dV) on the forward kernel's O and LSE instead.
import { openWebGpu } from '../src/runtime/webgpu.ts';
import { renderKernel } from '../src/compiler/compile.ts';
import { defaultTables, randomInputs } from '../src/runtime/random.ts';
import { loadExamples } from '../tests/cuda/suite.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { argValue as arg, failWith } from './script-args.ts';

const fail = failWith('webgpu-bench');
process.env.XDG_RUNTIME_DIR ??= '/tmp';
const dtype = arg('dtype', 'f32') as 'f32' | 'f16';
if (dtype !== 'f32' && dtype !== 'f16') fail(`--dtype ${dtype}: f32 or f16`);
const D = Number(arg('D', '64'));
const iters = Number(arg('iters', '5'));
const backward = process.argv.includes('--backward');
const shapes = arg('shapes', '1x8x2x1x4096,1x8x2x16x4096,1x8x2x64x4096').split(',').map((s) => {
  const [B, Hq, Hkv, Nq, Nk] = s.split('x').map(Number);
  if (![B, Hq, Hkv, Nq, Nk].every((n) => Number.isInteger(n) && n >= 1) || Hq % Hkv !== 0) fail(`--shapes ${s}: B x Hq x Hkv x Nq x Nk, Hkv dividing Hq`);
  return { B, Hq, Hkv, Nq, Nk, D };
});
if (!(Number.isInteger(iters) && iters >= 1)) fail('--iters: a whole number >= 1');
const specs = loadExamples(arg('specs', 'causal,scale_invariant').split(','));
const be = await openWebGpu().catch((e: Error) => fail(e.message));
console.log(be.describe());
try {
  for (const s of specs) {
    const text = readFileSync(join('examples', `${s.name}.attn`), 'utf8');
    const kernel = renderKernel(text, s.block, s.lowered, { target: 'wgsl', dtype, headDim: D, limits: be.limits() });
    for (const shape of shapes) {
      const { q, k, v } = randomInputs(shape, 1);
      const params = Object.fromEntries(s.lowered.program.params.map((p) => [p.name, p.default]));
      const call = { ...shape, q, k, v, params, tables: defaultTables(s.lowered.program.inputs, shape, 1) };
      const fwd = await be.run(kernel, call);
      const bwdKernel = backward ? renderKernel(text, s.block, s.lowered, { target: 'wgsl', dtype, headDim: D, limits: be.limits(), pass: 'backward' }) : null;
      const dO = randomInputs(shape, 2).q;
      const once = () => (bwdKernel ? be.backward!(bwdKernel, call, { o: fwd.o, lse: fwd.lse, dO }) : be.run(kernel, call));
      await once();
      const ms: number[] = [];
      for (let i = 0; i < iters; i++) {
        const t0 = performance.now();
        await once();
        ms.push(performance.now() - t0);
      }
      ms.sort((a, b) => a - b);
      const { B, Hq, Hkv, Nq, Nk } = shape;
      console.log(`${s.name.padEnd(20)} ${backward ? 'backward ' : ''}${dtype} B${B} H${Hq}/${Hkv} Nq${Nq} Nk${Nk} D${D} BM${(kernel.manifest.tile as { bm: number }).bm}: median ${ms[ms.length >> 1].toFixed(1)} ms (min ${ms[0].toFixed(1)})`);
    }
  }
} finally {
  be.dispose();
}
