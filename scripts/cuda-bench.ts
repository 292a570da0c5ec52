// Times generated CUDA kernels through the Node runtime (events around each
// launch, median of --iters (20) after 3 warm-ups). FLOPs counted as KERNELS.md does:
// 4*B*H*N*N*D, halved for causal masks.
//   npx tsx scripts/cuda-bench.ts [--specs causal,scale_invariant] [--dtype bf16] [--D 128]
//     [--shapes 2x16384,8x4096] [--H 16] [--Hkv H] [--bench-docs] [--variants default,4x64,8x64x1,4x64x2,12x128,8x128p,8x192p3]
//     (default: the compiler's own tiles for each spec and shape; default+m: those with a diet piece on or off, as below)
//     (warps x BN x m16-tiles per warp; on Hopper these tile the wgmma kernel, where a
//     suffix p adds a producer warpgroup, p3 with 3 stages, p3o (po) overlaps softmax with P V, P (p3oP) makes it persistent (items in snake order, the default), Pr walks them in plain round robin, s8 (p3os8) keeps 8 table-scan loads in flight per producer thread, -flt (p3oP-fl) turns the softmax's scale fold (f), lazy rescale (l) or two chains (t) off, +flt on (m: row sums on the tensor cores, z: zero reference, w: P V waited for before the softmax, g: pingpong, c: per-diagonal values carried in the producer's registers, d: per-diagonal values read while S is computed, e: exponentials two at a time (packed ex2; needs m and no l or z); groups combine: default-z+w), @2 builds for 2 blocks per SM; ATTNC_CUDA_KERNEL=mma: the mma.sync one)
//     [--iters 20]  timed launches per kernel (after 3 warm-ups)
//     [--clock-probe]  after each launch, the SM clock a probe kernel measures (cuda-clock-probe.ts), per launch,
//       and each launch's SM cycles (ms x MHz), which do not depend on the clock the GPU chose
//     [--queued]  launches back to back as the bench times them (default: each waited for before the next)
//     [--timeout-s 60]  each variant in a process of its own, killed after that long: a kernel that
//     hangs (a tiling under test) costs one line of the sweep instead of the whole device session
import { loadExamples } from '../tests/cuda/suite.ts';
import { parseTileVariant, TILE_VARIANT_SYNTAX } from './tile-variants.ts';
import { cudaLaunchFor, renderCuda, tilesLineOf } from '../src/compiler/render/cuda.ts';
import type { CompiledKernel } from '../src/compiler/manifest.ts';
import { openCuda } from '../src/runtime/cuda.ts';
import { defaultTables } from '../src/runtime/random.ts';
import type { StorageDType } from '../src/compiler/manifest.ts';
import { spawnSync } from 'node:child_process';
import { cachedInputs } from './bench-inputs.ts';
import { argValue as arg, failWith } from './script-args.ts';

const fail = failWith('cuda-bench');
const specs = arg('specs', 'causal,scale_invariant').split(',');
const dtype = arg('dtype', 'bf16') as StorageDType;
const D = Number(arg('D', '128'));
const H = Number(arg('H', '16'));
// --Hkv: key/value heads (GQA), a divisor of H; --shapes BxN (Nq = Nk = N) or BxNqxNk (e.g. 8x1x8192: decode)
const Hkv = Number(arg('Hkv', String(H)));
const shapes = arg('shapes', '2x16384').split(',').map((s) => s.split('x').map(Number)).map(([B, Nq, Nk]) => [B, Nq, Nk ?? Nq]);
if (!(Hkv >= 1 && H % Hkv === 0) || shapes.some((x) => x.some((n) => !(Number.isInteger(n) && n >= 1)))) {
  fail('--Hkv must divide --H, and --shapes are BxN or BxNqxNk of whole numbers >= 1');
}
// Document ids as bench/run.py makes them (lengths uniform in N/16..N/4) rather than defaultTables' 1-4 boundaries.
const benchDocs = process.argv.includes('--bench-docs');
// --queued: the timed launches back to back, waited for once at the end (as bench/run.py times), not one by one.
const queued = process.argv.includes('--queued');
const iters = Number(arg('iters', '20'));
// --clock-probe: after each launch, the SM clock a probe kernel measures (src/runtime/cuda-clock-probe.ts), printed per launch.
const clockProbe = process.argv.includes('--clock-probe');
if (clockProbe && queued) fail('--clock-probe runs between launches, so not with --queued');
if (!(Number.isInteger(iters) && iters >= 1)) fail('--iters: expected a whole number of timed launches >= 1');
const variants = arg('variants', '4x64').split(',').map((s) => parseTileVariant(s) ?? fail(`--variants: ${s}: expected ${TILE_VARIANT_SYNTAX}`));

/**
 * What ran at this Nq and Nk: the launch rule (cudaLaunchFor) picks the main kernel or a short- or long-row
 * variant, and that kernel's line of the .cu header (Tiles, Short rows or Long rows) says how it is tiled.
 */
function tileLine(kernel: CompiledKernel, nq: number, nk: number): string {
  const { entryPoint } = cudaLaunchFor(kernel.manifest, nk, nq);
  const main = entryPoint === kernel.manifest.entryPoint;
  const l = tilesLineOf(kernel.source, main ? undefined : entryPoint) ?? '';
  const num = (re: RegExp) => re.exec(l)?.[1] ?? '?';
  return `${main ? '' : entryPoint.endsWith('_long') ? 'long-row ' : 'short-row '}BM${num(/BM=(\d+)/)} BN${num(/BN=(\d+)/)} ${num(/(\d+) cp\.async stages/)}st${/overlapped/.test(l) ? ' overlap' : ''}${/persistent/.test(l) ? ' persistent' : ''}`;
}

function benchDocIds(n: number, seed: number): Int32Array {
  let x = seed >>> 0;
  const rand = () => ((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
  const lo = Math.max(1, Math.floor(n / 16)), hi = Math.max(2, Math.floor(n / 4));
  const ids = new Int32Array(n);
  for (let i = 0, doc = 0; i < n; doc++) for (let len = lo + Math.floor(rand() * (hi - lo + 1)); len > 0 && i < n; len--) ids[i++] = doc;
  return ids;
}

const timeoutArg = process.argv.indexOf('--timeout-s');
if (timeoutArg >= 0) {
  const seconds = Number(process.argv[timeoutArg + 1]);
  if (!(seconds > 0)) throw new Error('--timeout-s: expected a number of seconds > 0');
  const rest: string[] = [];  // this command line less --timeout-s and --variants (each with its value)
  for (let i = 2; i < process.argv.length; i++) {
    if (process.argv[i] === '--timeout-s' || process.argv[i] === '--variants') i++;
    else rest.push(process.argv[i]);
  }
  let status = 0;
  for (const { label } of variants) {
    const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1], ...rest, '--variants', label], { stdio: 'inherit', timeout: seconds * 1000, killSignal: 'SIGKILL' });
    if (child.error || child.signal) console.log(`${label}: killed after ${seconds} s (${child.signal ?? child.error?.message}): hung or too slow`);
    if (child.status !== 0) status = 1;
  }
  process.exit(status);
}

const be = await openCuda().catch((e: Error) => fail(e.message));  // no device here: one line, not a stack trace
console.log(be.describe());
try {
  for (const [B, Nq, N] of shapes) {
    const shape = { B, Hq: H, Hkv, Nq, Nk: N, D };
    // A square call with every head its own K/V is named as before (scripts/cuda-ab-table.py reads those lines);
    // others say their GQA and lengths, and are measured in K/V bytes read per second (decode is bound by them).
    const square = Nq === N && Hkv === H;
    const where = square ? `B${B} H${H} N${N} D${D}` : `B${B} H${H}/${Hkv} Nq${Nq} Nk${N} D${D}`;
    const { q, k, v } = cachedInputs(shape, 7);
    for (const spec of loadExamples(specs)) {
      const params = Object.fromEntries(spec.lowered.program.params.map((p) => [p.name, p.default]));
      for (const { tiles, label } of variants) {
        const tables = defaultTables(spec.lowered.program.inputs, shape, 7);  // ALiBi slopes, document ids, ...
        if (benchDocs) for (const t of spec.lowered.program.inputs) if (t.elem === 'i32' && t.axis === 'kv_len') tables[t.name] = benchDocIds(N, 1000 + N);
        let kernel, t;
        try {
          kernel = renderCuda(spec.lowered, { dtype, headDim: D, hash: 'bench', version: 'bench', tiles, arch: be.codegen().arch });
          t = await be.time(kernel, { ...shape, q, k, v, params, tables }, iters, 3, { queued, clockProbe });
        } catch (e) {
          // One variant that does not fit (shared memory, a tile rule) must not end the sweep.
          console.log(`${spec.name.padEnd(20)} ${dtype} ${where} ${label}: failed: ${(e as Error).message.split('\n')[0]}`);
          continue;
        }
        const causal = !kernel.manifest.analysis.maskFree;
        const flops = (4 * B * H * N * N * D) / (causal ? 2 : 1);
        const kvBytes = 2 * B * Hkv * N * D * (dtype === 'f32' ? 4 : 2);
        const rate = square ? `${(flops / t.medianMs / 1e9).toFixed(1)} TFLOP/s` : `${(kvBytes / t.medianMs / 1e6).toFixed(1)} GB/s of K/V`;
        console.log(`${spec.name.padEnd(20)} ${dtype} ${where} ${kernel.manifest.abi.kernel} ${label.padEnd(9)} ${tileLine(kernel, Nq, N)}: median ${t.medianMs.toFixed(3)} ms  ${rate} (min ${t.minMs.toFixed(3)}, p90 ${t.p90Ms.toFixed(3)} ms)`);
        if (t.launches) {
          // SM cycles per launch (ms x MHz): what a change to the kernel saves, whatever clock the GPU ran it at.
          const mcycles = t.launches.map((l) => l.ms * l.mhz / 1e3).sort((a, b) => a - b);
          console.log(`  SM cycles per launch: median ${mcycles[mcycles.length >> 1].toFixed(3)} M (min ${mcycles[0].toFixed(3)} M)`);
          console.log(`  launches in order, ms@MHz: ${t.launches.map((l) => `${l.ms.toFixed(3)}@${l.mhz.toFixed(0)}`).join(' ')}`);
        }
      }
    }
  }
} finally {
  be.dispose();
}
