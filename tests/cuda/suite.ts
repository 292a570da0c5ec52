// The CUDA differential suite: every example through openCuda() against the
// float64 reference (sampled rows for long sequences). Used by
// tests/cuda/runtime.test.ts (small shapes) and scripts/test-gpu.sh (all
// shapes, run directly: `npx tsx tests/cuda/suite.ts [--long] [--only a,b] [--emu]`).
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseSpec } from '../../src/compiler/syntax/parse.ts';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { analyzeProgram } from '../../src/compiler/passes/analyze.ts';
import { renderCuda } from '../../src/compiler/render/cuda.ts';
import type { StorageDType } from '../../src/compiler/manifest.ts';
import type { TileOverrides } from '../../src/compiler/schedule/cuda-tiles.ts';
import type { AttentionBlock } from '../../src/compiler/syntax/ast.ts';
import type { LoweredKernel } from '../../src/compiler/ir/program.ts';
import type { Backend } from '../../src/runtime/device.ts';
import { referenceAttention } from '../../src/runtime/reference.ts';
import { defaultTables, randomInputs, type Shape } from '../../src/runtime/random.ts';
import { compareOutputs, sampleRows, TOLERANCE } from '../../src/runtime/compare.ts';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));

export interface Spec { name: string; block: AttentionBlock; lowered: LoweredKernel }

/** Runs `f` with environment variables set (the emulator's ATTNC_EMU_* modes are read at each launch), then puts them back. */
export async function withEnv<T>(vars: Record<string, string>, f: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  Object.assign(process.env, vars);
  try {
    return await f();
  } finally {
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

export function loadExamples(only?: string[]): Spec[] {
  const out: Spec[] = [];
  for (const f of readdirSync(EXAMPLES_DIR).filter((x) => x.endsWith('.attn')).sort()) {
    const name = f.replace(/\.attn$/, '');
    if (only && !only.includes(name)) continue;
    const { file } = parseSpec(f, readFileSync(join(EXAMPLES_DIR, f), 'utf8'));
    const block = file.blocks[0];
    const program = lowerBlock(block);
    out.push({ name, block, lowered: { program, analysis: analyzeProgram(program) } });
  }
  return out;
}

/** The CUDA backend for a test file, or null with the reason (printed once) where this machine has no CUDA driver, device or NVRTC. */
export async function openTestCuda(file: string): Promise<{ backend: import('../../src/runtime/cuda.ts').CudaBackend | null; reason: string }> {
  try {
    const { openCuda } = await import('../../src/runtime/cuda.ts');
    return { backend: await openCuda(), reason: '' };
  } catch (e) {
    const reason = `${(e as Error).name}: ${(e as Error).message}`;
    console.warn(`${file}: skipped: ${reason}`);
    return { backend: null, reason };
  }
}

export interface CaseResult {
  spec: string; dtype: StorageDType; shape: Shape;
  errO: number; errLse: number; nan: number; rows: number; tol: number; pass: boolean; ms: number;
}

/** Small shapes: ragged lengths, GQA, decode (Nq = 1 < Nk), Nq < Nk, and a sampled long one. */
export function shortShapes(D: number): Shape[] {
  return [
    { B: 1, Hq: 2, Hkv: 2, Nq: 1, Nk: 1, D },
    { B: 1, Hq: 2, Hkv: 2, Nq: 17, Nk: 17, D },
    { B: 2, Hq: 4, Hkv: 2, Nq: 300, Nk: 300, D },
    { B: 1, Hq: 4, Hkv: 1, Nq: 1, Nk: 1000, D },
    { B: 1, Hq: 2, Hkv: 2, Nq: 17, Nk: 300, D },
    { B: 1, Hq: 2, Hkv: 1, Nq: 1000, Nk: 1000, D },
  ];
}

export function longShapes(D: number): Shape[] {
  return [
    // past 2048 query rows (the long-row variant's minNq at D=64), ragged against its 192-row blocks
    { B: 1, Hq: 2, Hkv: 1, Nq: 2100, Nk: 2100, D },
    { B: 1, Hq: 2, Hkv: 1, Nq: 4096, Nk: 4096, D },
    { B: 1, Hq: 2, Hkv: 2, Nq: 16384, Nk: 16384, D },
    { B: 1, Hq: 8, Hkv: 1, Nq: 1, Nk: 16384, D },
  ];
}

/**
 * Softmax-diet pieces of the wgmma kernel on or off, as signed groups of letters: "+m", "-flt", "-z+w".
 * f scale fold, l lazy rescale, t two chains, m row sums on the tensor cores, z zero reference,
 * w P V waited for (and its stage released) before the softmax, r O rescaled inside the softmax (rescaleInSoftmax),
 * k the zero reference checked on the packed P (packedRefCheck), g pingpong (CudaTiles.pingpong), c per-diagonal
 * values carried by the producer, d read early by the consumers; the others keep their defaults (undefined). ATTNC_CUDA_DIET and cuda-bench's variant suffixes read the same letters.
 */
export const DIET_LETTERS = 'fltmzwrkgcd';
export const DIET_GROUPS = `(?:[-+][${DIET_LETTERS}]+)+`;
export function dietOverrides(groups: string | undefined): TileOverrides {
  const on = new Map<string, boolean>();
  for (const [, sign, letters] of (groups ?? '').matchAll(new RegExp(`([-+])([${DIET_LETTERS}]+)`, 'g'))) for (const c of letters) on.set(c, sign === '+');
  return { foldScale: on.get('f'), lazyRescale: on.get('l'), twoChains: on.get('t'), rowSumMma: on.get('m'), zeroRef: on.get('z'), earlyPvWait: on.get('w'), rescaleInSoftmax: on.get('r'), packedRefCheck: on.get('k'), pingpong: on.get('g'), diagCarry: on.get('c'), diagPrefetch: on.get('d') };
}

/** One case on a backend that runs CUDA kernels (the Node CUDA runtime, or the torch module's): its kernel, against float64. */
export async function runCase(be: Backend, spec: Spec, dtype: StorageDType, shape: Shape, seed = 1): Promise<CaseResult> {
  const codegen = be.codegen();
  if (codegen.target !== 'cuda') throw new Error(`runCase: ${be.name} runs ${codegen.target}, not CUDA kernels`);
  const t0 = performance.now();
  // ATTNC_CUDA_TILES=warps,bn,mt[,producer,stages,overlap,ctas,persistent,snake] checks a non-default tiling of the tensor-core
  // kernel (producer: 1 adds the wgmma kernel's producer warpgroup, 0 drops it; overlap: 1 overlaps softmax and P V;
  // ctas: blocks per SM it is built for; persistent: 1 walks work items with a grid stride, which
  // ATTNC_CUDA_MAX_BLOCKS=3 makes every block of these small shapes do several times; snake: 0 walks a
  // persistent kernel's items in plain round robin instead of the default snake order).
  const [warps, bn, mt, producer, stages, overlap, ctas, persistent, snake] = (process.env.ATTNC_CUDA_TILES ?? '').split(',').map((x) => (x ? Number(x) : undefined));
  const flag = (x: number | undefined) => (x === undefined ? undefined : x === 1);
  // ATTNC_CUDA_DIET=+m (or -flt, -z+w...): pieces of the wgmma kernel's softmax diet on or off (dietOverrides).
  // Either variable set means explicit tiles, which carry no short-row kernel.
  const diet = new RegExp(`^${DIET_GROUPS}$`).exec(process.env.ATTNC_CUDA_DIET ?? '');
  const tiles = { warps, bn, mt, stages, producer: flag(producer), overlap: flag(overlap), ctas, persistent: flag(persistent), snakeOrder: flag(snake),
    ...dietOverrides(diet?.[0]) };
  const explicit = !!process.env.ATTNC_CUDA_TILES || !!diet;
  // Hopper: the wgmma kernels (unless ATTNC_CUDA_KERNEL=mma)
  const kernel = renderCuda(spec.lowered, { dtype, headDim: shape.D, hash: 'test', version: 'test', tiles: explicit ? tiles : undefined, arch: codegen.arch });
  const { q, k, v } = randomInputs(shape, seed);
  const params = Object.fromEntries(spec.lowered.program.params.map((p) => [p.name, p.default]));
  // Short windows/prefixes so that masks actually cut inside short sequences too.
  if ('window' in params && shape.Nk <= 1000) params.window = 100;
  if ('prefix' in params && shape.Nk <= 1000) params.prefix = 40;
  const tables = defaultTables(spec.lowered.program.inputs, shape, seed);
  const call = { ...shape, q, k, v, params, tables };
  const got = await be.run(kernel, call);
  const rows = sampleRows(shape.Nq, seed, 48, 600);
  const want = referenceAttention(spec.block, call, { rows });
  const cmp = compareOutputs(got, { ...want, rows }, shape);
  const tol = TOLERANCE[dtype];
  // Inputs are NOT rounded to the storage dtype for the reference: the error includes that rounding.
  const pass = cmp.nanCount === 0 && cmp.maxAbsErrO <= tol && cmp.maxAbsErrLse <= tol;
  return { spec: spec.name, dtype, shape, errO: cmp.maxAbsErrO, errLse: cmp.maxAbsErrLse, nan: cmp.nanCount, rows: cmp.rowsCompared, tol, pass, ms: performance.now() - t0 };
}

export function formatResult(r: CaseResult): string {
  const s = r.shape;
  return `${r.pass ? 'PASS' : 'FAIL'} ${r.spec.padEnd(26)} ${r.dtype.padEnd(4)} B${s.B} H${s.Hq}/${s.Hkv} Nq${s.Nq} Nk${s.Nk} D${s.D}  errO ${r.errO.toExponential(2)} errLSE ${r.errLse.toExponential(2)} nan ${r.nan} rows ${r.rows} (${r.ms.toFixed(0)} ms)`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const long = argv.includes('--long');
  const onlyArg = argv.indexOf('--only');
  const only = onlyArg >= 0 ? argv[onlyArg + 1].split(',') : undefined;
  const dtArg = argv.indexOf('--dtypes');
  const maxArg = argv.indexOf('--max-n');
  const maxN = maxArg >= 0 ? Number(argv[maxArg + 1]) : Infinity;
  const dimArg = argv.indexOf('--dims');
  const dims = dimArg >= 0 ? argv[dimArg + 1].split(',').map(Number) : [64, 128];
  const dtypes = (dtArg >= 0 ? argv[dtArg + 1].split(',') : ['f32', 'f16', 'bf16']) as StorageDType[];
  // --emu: the CUDA emulator on the CPU (src/runtime/cuda-emu.ts) in place of a GPU
  const open = argv.includes('--emu') ? (await import('../../src/runtime/cuda-emu.ts')).openCudaEmu : (await import('../../src/runtime/cuda.ts')).openCuda;
  const be = await open().catch((e: Error) => {
    console.error(`suite: ${e.message}`);  // no device here: one line, not a stack trace
    process.exit(2);
  });
  console.log(be.describe());
  let pass = 0, fail = 0;
  try {
    for (const spec of loadExamples(only)) {
      for (const D of dims) for (const dtype of dtypes) {
        const shapes = [...shortShapes(D), ...(long ? longShapes(D) : [])].filter((s) => Math.max(s.Nq, s.Nk) <= maxN);
        for (const shape of shapes) {
          try {
            const r = await runCase(be, spec, dtype, shape);
            console.log(formatResult(r));
            if (r.pass) pass++; else fail++;
          } catch (e) {
            fail++;
            console.log(`FAIL ${spec.name} ${dtype} ${JSON.stringify(shape)}: ${(e as Error).message.split('\n').slice(0, 20).join('\n')}`);
          }
        }
      }
    }
  } finally {
    be.dispose();
  }
  console.log(`\nCUDA differential suite: ${pass} passed, ${fail} failed`);
  process.exitCode = fail ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
