// CUDA-C rendering: one `extern "C" __global__` kernel per (spec, dtype,
// head dim), plus its manifest. f16/bf16 run on tensor cores (cuda-mma.ts),
// f32 on CUDA cores (cuda-simt.ts); both take the spec-dependent pieces from
// cuda-spec.ts. The source needs no #include, so NVRTC compiles it without
// CUDA headers; nvcc compiles it as is.
//
// ABI (manifest.abi.args lists it too): kernel arguments in this order
//   Q, K, V (const elem*), O (elem*), LSE (float*),
//   B, Hq, Hkv, Nq, Nk (int),
//   each param in manifest order (float or int),
//   each table input in manifest order (const float* / const int*),
// where elem is the storage type (unsigned short holding f16/bf16 bits, or
// float). Launch: grid [ceil(Nq / tile.bm), Hq, B], block [tile.threads, 1, 1],
// dynamic shared memory abi.dynamicSmemBytes (raise the function's limit
// above 48 KiB first; where abi.blocksPerSm > 1, also set the preferred
// shared-memory carveout to 100 so that that many blocks fit). Where
// abi.persistent is true the kernel walks its work items (ceil(Nq / tile.bm)
// * Hq * B query blocks) with a grid stride: the grid above stays correct, and
// abi.persistentGrid, [min(items, SMs * blocksPerSm), 1, 1], is the fast one.
import type { LoweredKernel } from '../ir/program.ts';
import { classifyTile } from '../passes/mask-intervals.ts';
import type { CompiledKernel, KernelManifest, StorageDType } from '../manifest.ts';
import { helpersUsed } from './cstyle.ts';
import { CUDA } from './lang-cuda.ts';
import { classifier } from './cuda-hoist.ts';
import { buildSpecCode } from './cuda-spec.ts';
import { mangle } from './names.ts';
import { PTX_COMMON, ptxMaxX2, ptxMma, ptxWgmma } from './cuda-ptx.ts';
import { renderMmaKernel } from './cuda-mma.ts';
import { renderWgmmaKernel } from './cuda-wgmma.ts';
import { renderWgmmaWsKernel } from './cuda-wgmma-ws.ts';
import { renderSimtKernel } from './cuda-simt.ts';
import { chooseCudaTiles, longRowTiles, shortRowTiles, type CudaTiles, type TileOverrides } from '../schedule/cuda-tiles.ts';

export interface CudaRenderOptions {
  dtype: StorageDType;
  headDim: number;
  hash: string;
  version: string;
  arch?: 'sm_80' | 'sm_90a';
  /** Tile overrides for tuning (warps per block, keys per tile); defaults from schedule/cuda-tiles.ts. */
  tiles?: TileOverrides;
  /** Row sums in f32 in the softmax, never on the tensor cores (CompileOptions.exactLse). */
  exactLse?: boolean;
}

const SKELETONS = { wgmma: renderWgmmaKernel, mma: renderMmaKernel, simt: renderSimtKernel } as const;
const DESCRIPTION = {
  wgmma: 'tensor cores (wgmma m64nNk16 from swizzled shared memory, f32 accumulate; sm_90a only)',
  mma: 'tensor cores (mma.sync m16n8k16, f32 accumulate)',
  simt: 'f32 on CUDA cores',
} as const;

export interface CudaArg {
  name: string;
  kind: 'ptr' | 'i32' | 'f32';
  /** For pointers: what they point to. */
  elem?: StorageDType | 'i32';
  role: 'tensor' | 'size' | 'param' | 'table';
}

/**
 * Whether the mask, at its params' defaults, leaves the keys far below the diagonal dead, as a sliding window does
 * (a tile of the last 128 queries of 65536 against 128 keys halfway along, classified by the tile test): then each
 * row's loop is short. A schedule hint only, so params that differ at run time cost speed, never correctness.
 */
function bandedMask(k: LoweredKernel, headDim: number): boolean {
  const n = 1 << 16;
  const params = Object.fromEntries(k.program.params.map((p) => [p.name, p.default]));
  const builtins = { head: 0, batch: 0, q_len: n, kv_len: n, head_dim: headDim, q_lo: n - 128, q_hi: n - 1, kv_lo: n / 2, kv_hi: n / 2 + 127 };
  try {
    return classifyTile(k.analysis.tile, { builtins, params, tables: {} }) === 'none';
  } catch {
    return false;  // a tile test that reads a table (no contents at compile time): not known to be banded
  }
}

export function renderCuda(k: LoweredKernel, opts: CudaRenderOptions): CompiledKernel {
  const { dtype, headDim } = opts;
  const p = k.program;
  const spec = buildSpecCode(k);
  const tableTileTest = spec.tilePerThread !== null;
  const hints = { tableTileTest, diagTables: spec.diagValues > 0, diagValues: spec.diagValues, tableBytes: spec.tableBytes, foldedScale: spec.foldedScale !== null, bandedMask: !tableTileTest && bandedMask(k, headDim), affineLogit: spec.affine };
  const exact = opts.exactLse ? { rowSumMma: false } : {};
  const tiles = chooseCudaTiles(dtype, headDim, { ...opts.tiles, ...exact }, opts.arch, hints);
  // Explicit tiles (tuning, tests) mean exactly that kernel; otherwise a spec may get a short-row or a long-row variant too.
  const short = opts.tiles ? null : shortRowTiles(dtype, headDim, opts.arch ?? 'sm_80', hints, exact);
  const long = opts.tiles ? null : longRowTiles(dtype, headDim, opts.arch ?? 'sm_80', hints, exact);
  const entry = `${mangle('attnc', p.name)}_${dtype}_d${headDim}`;
  // The variants in the order a loader tries them, each with the condition it serves (CudaVariant).
  const variants = [
    ...(short ? [{ entryPoint: `${entry}_short`, tiles: short.tiles, when: { maxNk: short.maxNk }, label: `Short rows (Nk <= ${short.maxNk})` }] : []),
    ...(long ? [{ entryPoint: `${entry}_long`, tiles: long.tiles, when: { minNq: long.minNq }, label: `Long rows (Nq >= ${long.minNq})` }] : []),
  ];
  const elemT = dtype === 'f32' ? 'float' : 'unsigned short';
  const sig = [
    `const ${elemT}* __restrict__ Q`, `const ${elemT}* __restrict__ K`, `const ${elemT}* __restrict__ V`,
    `${elemT}* __restrict__ O`, 'float* __restrict__ LSE',
    'const int B', 'const int Hq', 'const int Hkv', 'const int Nq', 'const int Nk',
    ...spec.paramDecls,
  ].join(',\n    ');
  const render = (name: string, t: CudaTiles) => (t.producerRegs ? renderWgmmaWsKernel : SKELETONS[t.kind])(name, spec, t, headDim, sig);
  const kernels = [render(entry, tiles), ...variants.map((v) => render(v.entryPoint, v.tiles))];
  const helpers = helpersUsed(CUDA, kernels.join('\n'));
  const launchLine = (t: CudaTiles) => `grid [ceil(Nq/${t.bm}), Hq, B]${t.persistent ? ` or any fewer blocks (best: [min(ceil(Nq/${t.bm})*Hq*B, SMs*${t.ctas}), 1, 1], persistent)` : ''}, block [${t.threads}], dynamic smem ${t.smemBytes} bytes`;
  const tilesLine = (t: CudaTiles) => `BM=${t.bm} query rows x BN=${t.bn} keys, ${t.threads} threads, ${t.stages} cp.async stages${t.producerRegs ? ` filled by a producer warpgroup (registers ${t.producerRegs} / ${t.consumerRegs} per thread${t.diagCarry ? ', per-diagonal values carried in its registers from tile to tile' : ''})` : ''}${t.overlap ? ', softmax overlapped with P V' : ''}${t.ctas > 1 ? `, ${t.ctas} blocks per SM` : ''}${t.persistent ? `, persistent (Q double-buffered${t.snakeOrder ? ', items in snake order' : ''})` : ''}${softmaxLine(t)}`;
  const header = `// Generated by attnc ${opts.version} from attention '${safeComment(p.name)}' (spec hash ${opts.hash}).
// Target: CUDA-C, storage ${dtype}, head_dim ${headDim}, ${DESCRIPTION[tiles.kind]}.
// Tiles: ${tilesLine(tiles)}.
${variants.map((v) => `// ${v.label}: ${v.entryPoint}, ${tilesLine(v.tiles)}; ${launchLine(v.tiles)}.\n`).join('')}// Logit: ${spec.affine ? 'affine (a * dot + c, folded into one FMA before exp2)' : 'general (evaluated per element)'}; mask: ${spec.maskFree ? 'none' : 'per element on partial tiles only'}.
// ABI: ${entry}(Q, K, V, O, LSE, B, Hq, Hkv, Nq, Nk${p.params.map((q) => `, ${q.name}:${q.type}`).join('')}${p.inputs.map((t) => `, ${t.name}:${t.elem}*`).join('')})
//      ${launchLine(tiles)}.
`;
  const wgmmaTiles = [tiles, ...variants.map((v) => v.tiles)].filter((t) => t.kind === 'wgmma');
  const widths = wgmmaTiles.map((t) => t.bn), rowSums = wgmmaTiles.some((t) => t.rowSumMma), pingpong = wgmmaTiles.some((t) => t.pingpong);
  const packedCheck = wgmmaTiles.some((t) => t.packedRefCheck);
  const source = [header, PTX_COMMON, tiles.kind === 'simt' ? '' : ptxMma(dtype as 'f16' | 'bf16'), ...(widths.length ? [ptxWgmma(dtype as 'f16' | 'bf16', widths, rowSums, pingpong)] : []), ...(packedCheck ? [ptxMaxX2(dtype as 'f16' | 'bf16')] : []), ...helpers, '', kernels.join('\n')].join('\n');

  const args: CudaArg[] = [
    ...['Q', 'K', 'V', 'O'].map((name): CudaArg => ({ name, kind: 'ptr', elem: dtype, role: 'tensor' })),
    { name: 'LSE', kind: 'ptr', elem: 'f32', role: 'tensor' },
    ...['B', 'Hq', 'Hkv', 'Nq', 'Nk'].map((name): CudaArg => ({ name, kind: 'i32', role: 'size' })),
    ...p.params.map((q): CudaArg => ({ name: q.name, kind: q.type, role: 'param' })),
    ...p.inputs.map((t): CudaArg => ({ name: t.name, kind: 'ptr', elem: t.elem, role: 'table' })),
  ];
  const classOf = classifier(k.analysis.classOf);
  const manifest: KernelManifest = {
    attnc: opts.version,
    target: 'cuda',
    spec: p.name,
    hash: opts.hash,
    entryPoint: entry,
    dtype,
    headDim,
    tile: tileOf(tiles),
    params: p.params,
    inputs: p.inputs,
    grid: `[ceil(Nq / ${tiles.bm}), Hq, B]`,
    abi: {
      convention: 'attnc-cuda-args-v1',
      args,
      ...launchAbi(tiles),
      arch: opts.arch ?? null,
      kernel: tiles.kind,
      // Other kernels of the same source and arguments: a loader launches the first whose conditions all hold
      // (Nk <= maxNk, Nq >= minNq; cudaLaunchFor) with its own grid, block and shared memory, and the kernel above otherwise.
      variants: variants.map((v) => ({ entryPoint: v.entryPoint, ...v.when, tile: tileOf(v.tiles), ...launchAbi(v.tiles), kernel: v.tiles.kind })),
    },
    analysis: {
      affine: spec.affine,
      maskFree: spec.maskFree,
      // The tile tests read tables (document ids): which tiles are live is data, found by the kernel per call.
      tileTestReadsTables: spec.tilePerThread !== null,
      classes: {
        logit: classOf(p.logit),
        mask: classOf(p.mask),
        ...(k.analysis.affine ? { a: classOf(k.analysis.affine.a), c: classOf(k.analysis.affine.c) } : {}),
      },
    },
  };
  return { source, manifest };
}

/**
 * What the source header says of a kernel's tiling: the main kernel's `Tiles` line, or with the entry point of
 * a variant (short or long rows), that variant's line (renderCuda writes each).
 */
export function tilesLineOf(source: string, variantEntry?: string): string | undefined {
  const line = variantEntry ? new RegExp(`^// (?:Short rows \\(Nk <= \\d+\\)|Long rows \\(Nq >= \\d+\\)): ${variantEntry}, (.*)$`, 'm') : /^\/\/ Tiles: (.*)$/m;
  return line.exec(source)?.[1];
}

/** The softmax's instruction diet where the kernel has it (cuda-tiles.ts), for the header's Tiles line. */
function softmaxLine(t: CudaTiles): string {
  const pieces = [
    ...(t.foldScale ? ['scale folded into exp2 (row max over raw dot products)'] : []),
    ...(t.lazyRescale ? [t.zeroRef ? 'lazy rescale (by warp, where a reference moved)' : 'lazy rescale (reference max moves by > 2^8)'] : []),
    ...(t.twoChains ? [t.rowSumMma ? 'row max in two chains' : 'row max and sum in two chains'] : []),
    ...(t.rowSumMma ? ['row sums on the tensor cores (P times ones, with P V)'] : []),
    ...(t.earlyPvWait ? ['P V waited for before the softmax'] : []),
    ...(t.rescaleInSoftmax ? ['O rescaled only where a reference moved'] : []),
    ...(t.packedRefCheck ? ['the zero reference checked on the packed P'] : []),
    ...(t.pingpong ? ['warpgroups take turns at the tensor cores (pingpong)'] : []),
    ...(t.zeroRef ? [`zero reference where the row max is in [${-t.zeroRef.low}, ${t.zeroRef.high}] (P = 2^x, no subtraction)`] : []),
    ...(t.diagPrefetch ? ['per-diagonal values read into registers while S is computed'] : []),
  ];
  return pieces.length ? `; softmax: ${pieces.join(', ')}` : '';
}

const tileOf = (t: CudaTiles) => ({ bm: t.bm, bn: t.bn, threads: t.threads });

/** How a kernel of the source is launched: the manifest's abi fields, the same for the main kernel and each variant. */
const launchAbi = (t: CudaTiles) => ({
  block: [t.threads, 1, 1],
  grid: ['ceil(Nq / tile.bm)', 'Hq', 'B'],
  // The kernel takes work items ceil(Nq / tile.bm) * Hq * B with a grid stride: any grid of that many blocks or
  // fewer is correct, and persistentGrid (one block per SM slot, sms = the device's SM count) is the fast one.
  ...(t.persistent ? { persistent: true, persistentGrid: ['min(ceil(Nq / tile.bm) * Hq * B, sms * blocksPerSm)', '1', '1'] } : {}),
  dynamicSmemBytes: t.smemBytes,
  // Built for this many resident blocks per SM: a loader should then prefer the full shared-memory carveout.
  blocksPerSm: t.ctas,
});

/** A name as it may stand in a generated comment: printable ASCII, no comment end or backslash. */
export function safeComment(s: string): string {
  return s.replace(/[^\x20-\x7e]|\*\/|\\/g, '?');
}

/** What one launch of a CUDA kernel's source needs: which entry point, its row tile, block and shared memory. */
export interface CudaLaunch { entryPoint: string; bm: number; block: number[]; dynamicSmemBytes: number; blocksPerSm: number; persistent: boolean }

/** A variant serves calls with Nk <= maxNk (short rows) and Nq >= minNq (long rows), each where given. */
interface CudaVariant { entryPoint: string; maxNk?: number; minNq?: number; tile: { bm: number }; block: number[]; dynamicSmemBytes: number; blocksPerSm?: number; persistent?: boolean }

/** The ABI's launch rule: the first variant whose conditions all hold, else the main kernel (manifests without variants: always it). */
export function cudaLaunchFor(m: KernelManifest, Nk: number, Nq: number): CudaLaunch {
  const all = cudaLaunches(m);
  const i = variantsOf(m).findIndex((x) => (x.maxNk === undefined || Nk <= x.maxNk) && (x.minNq === undefined || Nq >= x.minNq));
  return all[i + 1];  // i = -1 (no variant covers Nk): the main kernel
}

/** Every launch configuration of a source: the main kernel first, then abi.variants in order. */
export function cudaLaunches(m: KernelManifest): CudaLaunch[] {
  const main = { ...(m.abi as Omit<CudaVariant, 'entryPoint' | 'maxNk' | 'minNq' | 'tile'>), entryPoint: m.entryPoint, tile: m.tile };
  return [main, ...variantsOf(m)].map((v) => ({ entryPoint: v.entryPoint, bm: v.tile.bm, block: v.block, dynamicSmemBytes: v.dynamicSmemBytes, blocksPerSm: v.blocksPerSm ?? 1, persistent: v.persistent ?? false }));
}

function variantsOf(m: KernelManifest): CudaVariant[] {
  return (m.abi as { variants?: CudaVariant[] }).variants ?? [];
}
