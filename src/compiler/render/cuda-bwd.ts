// The CUDA backward kernels: dQ, dK, dV of one spec on the tensor cores (f16/bf16 storage, f32 accumulators),
// FlashAttention-2's backward on one stream (P is recomputed from the forward's LSE, never stored). As written here
// without any variant (cuda-bwd-tuning.ts; `--cuda-bwd none`), two launches on mma.sync m16n8k16:
//
//   <entry>_bwd_dq    a block owns 64 query rows of one (batch, head), 16 per warp:
//                     delta_i = dO_i · O_i (also written to Delta for the second launch), then per live KV tile
//                       S = Q K^T, dP = dO V^T                     (two MMAs per k16 step, sharing the step)
//                       p = exp2(logit2 - LSE2), dS = p (dP - delta) g,   g = d logit / d(q·k)
//                       dQ += dS K                                 (dS re-packed from the accumulators, K transposed)
//   <entry>_bwd_dkdv  a block owns 64 keys of one (batch, kv head), 16 per warp, and walks the query tiles of
//                     every query head that reads it (GQA):
//                       S^T = K Q^T, dP^T = V dO^T, the same element step with rows and columns swapped,
//                       dV += P^T dO, dK += dS^T Q
//
// The logit, the mask and g come from the same IR as the forward kernel (exp2-feed.ts, passes/derivative.ts),
// evaluated per element (nvcc hoists what is loop-invariant), or with the forward's tables (`tables`). The forward's
// tile tests skip tiles with no kept pair and drop the mask on full ones, in both launches. The defaults per arch and
// head dim (defaultBackwardTuning) add variants: wgmma products, the single pass (fused-dq: prep, dK/dV with dQ's
// atomic adds, store), cp.async stats, windowed item tests, and at D = 128 (at D = 64 where the mask's tile test
// scans no table) blocks of two warpgroups with FlashAttention-3's order of products, the products waited for late
// and dQ added by bulk reductions (two-wg, overlap, late-wait, bulk-dq; at D = 128 dQ's product on wgmma too).
//
// The pieces live beside it: cuda-bwd-tuning.ts (the variants and the defaults), cuda-bwd-elem.ts (the element
// step), cuda-bwd-mma.ts and cuda-bwd-wgmma.ts (the matrix products), cuda-bwd-fused.ts (the single pass's
// launches and dQ product); this file lays out the launches.
import type { CompiledKernel, KernelManifest, StorageDType } from '../manifest.ts';
import type { LoweredKernel } from '../ir/program.ts';
import { helpersUsed } from './cstyle.ts';
import { CUDA } from './lang-cuda.ts';
import { buildSpecCode, tileClassifier, tileWindow, type SpecCode } from './cuda-spec.ts';
import { mangle } from './names.ts';
import { PTX_COMMON, ptxMma, ptxWgmma } from './cuda-ptx.ts';
import { backwardTuningLabel, defaultBackwardTuning, type CudaBackwardTuning } from './cuda-bwd-tuning.ts';
import { elementCode, elementStep } from './cuda-bwd-elem.ts';
import { accumulateCode, LANE, twoProductsCode } from './cuda-bwd-mma.ts';
import { ownedRows, tileChunk, wgAccumulate, wgDescs, wgmmaBackwardFits, wgTwoProducts, WG_SMEM_BASE } from './cuda-bwd-wgmma.ts';
import { safeComment, type CudaArg } from './cuda.ts';
import { BULK_HELPERS, deltaCode, DQ_FLUSH, dqOverlapLoop, dqOverlapOn, dqStageBytes, dsDecl, FUSED_ROWS, fusedDqCode, fusedDqFits, fusedDqWgmmaCode, prepKernel, redHelper, storeKernel, wgmmaDqOn } from './cuda-bwd-fused.ts';
import { liveQueriesEnd } from '../passes/mask-intervals.ts';

export interface CudaBackwardOptions { dtype: StorageDType; headDim: number; hash: string; version: string; arch?: 'sm_80' | 'sm_90a'; tuning?: CudaBackwardTuning }

/** One launch of the backward kernels, as the manifest's abi.stages lists it. */
export interface CudaBackwardStage {
  entryPoint: string;
  what: string;
  /** Its blocks own `bm` query rows of a query head ('queries') or `bm` keys of a kv head ('keys'). */
  over: 'queries' | 'keys';
  bm: number;
  grid: string[];
  block: number[];
  dynamicSmemBytes: number;
  /**
   * Its blocks walk the stage's tiles with a grid stride (tuning persistent): any grid is correct, the one above gives
   * each block one tile, and [min(tiles, SMs), 1, 1] (cudaBackwardGrid with the SM count) is the fast one.
   */
  persistent?: boolean;
}

/** The stages of a backward manifest, in launch order. */
export function cudaBackwardStages(m: KernelManifest): CudaBackwardStage[] {
  return (m.abi as { stages: CudaBackwardStage[] }).stages;
}

/**
 * A stage's grid for a call: [ceil(Nq / bm), Hq, B] over queries, [ceil(Nk / bm), Hkv, B] over keys; for a persistent
 * stage given `blocks` (one per SM slot), [min(tiles, blocks), 1, 1].
 */
export function cudaBackwardGrid(st: CudaBackwardStage, s: { B: number; Hq: number; Hkv: number; Nq: number; Nk: number }, blocks?: number): [number, number, number] {
  const full: [number, number, number] = st.over === 'queries' ? [Math.ceil(s.Nq / st.bm), s.Hq, s.B] : [Math.ceil(s.Nk / st.bm), s.Hkv, s.B];
  return st.persistent && blocks ? [Math.min(full[0] * full[1] * full[2], blocks), 1, 1] : full;
}

/** Rows a block owns (query rows for dQ, keys for dK and dV): 4 warps of 16. */
const OWN = 64;
/** Keys per loop tile of the dQ launch. */
const DQ_BN = 64;

/** Why the backward kernels cannot take a storage type and head dim (null when they can). */
export function cudaBackwardProblem(dtype: StorageDType, headDim: number): string | null {
  if (dtype === 'f32') return 'cuda backward kernels take f16 or bf16 storage (tensor cores); f32 gradients: --backend webgpu';
  return headDim % 16 === 0 && headDim >= 16 && headDim <= 128 ? null : `cuda backward: head_dim ${headDim} must be a multiple of 16 from 16 to 128`;
}

/** A dK/dV block: `bk` keys (64 per warpgroup), loop tiles of `qt` queries, `threads` threads, a ring of `ring` item stages. */
interface DkdvShape { bk: number; qt: number; threads: number; ring: number }

/**
 * One warpgroup of 64 keys, with 32-query tiles at D > 64 (dK, dV, S and dP of a thread within the registers that
 * __launch_bounds__(128, 1) leaves beside what ptxas keeps for addressing), or two warpgroups (tuning twoWarpgroups,
 * wgmma kernels only) of 64 keys each and 64-query tiles.
 */
function dkdvShape(headDim: number, warpgroups: number, ring: number): DkdvShape {
  return { bk: OWN * warpgroups, qt: warpgroups > 1 || headDim <= 64 ? 64 : 32, threads: 128 * warpgroups, ring };
}

export function renderCudaBackward(k: LoweredKernel, opts: CudaBackwardOptions): CompiledKernel {
  const { dtype, headDim } = opts;
  const problem = cudaBackwardProblem(dtype, headDim);
  if (problem) throw new Error(problem);
  const p = k.program;
  const spec = buildSpecCode(k);
  const entry = `${mangle('attnc', p.name)}_${dtype}_d${headDim}`;
  const dqEntry = `${entry}_bwd_dq`, dkdvEntry = `${entry}_bwd_dkdv`, prepEntry = `${entry}_bwd_prep`, storeEntry = `${entry}_bwd_dq_store`;
  // the defaults per arch and head dim, and at D = 64 per mask: tile tests that scan tables (documents) keep small blocks
  const tuning = opts.tuning ?? defaultBackwardTuning(opts.arch, headDim, spec.itemPerThread !== null, liveQueriesEnd(k.analysis.tile));
  const wg = !!tuning.wgmma && wgmmaBackwardFits(headDim) && opts.arch !== 'sm_80';  // wgmma: Hopper (sm_90a) only
  const warpgroups = wg && tuning.twoWarpgroups ? 2 : 1;  // a block's, in both launches: 64 rows each
  const shape = dkdvShape(headDim, warpgroups, tuning.threeStages ? 3 : 2);
  const dqRows = OWN * warpgroups;
  const { qt, bk } = shape;
  const fused = !!tuning.fusedDq && fusedDqFits(qt, headDim, shape.threads / 32);
  const sig = [
    ...['Q', 'K', 'V', 'O'].map((n) => `const unsigned short* __restrict__ ${n}`), 'const float* __restrict__ LSE',
    'const unsigned short* __restrict__ dO', 'unsigned short* __restrict__ dQ', 'unsigned short* __restrict__ dK',
    'unsigned short* __restrict__ dV', 'float* __restrict__ Delta', ...(fused ? ['float* __restrict__ dQacc'] : []),
    'const int B', 'const int Hq', 'const int Hkv', 'const int Nq', 'const int Nk', ...spec.paramDecls,
  ].join(',\n    ');
  // Padded rows for ldmatrix, or swizzled atoms and 1 KiB of slack for wgmma.
  const rowElems = wg ? headDim : headDim + 8, slack = wg ? 1024 : 0;
  const tcDq = wgmmaDqOn(tuning, wg, fused, qt, headDim, warpgroups);  // dS^T then in the dynamic shared memory: [BK][64], swizzled
  const bulk = wg && fused && !!tuning.bulkDq;  // dQ staged in shared memory, added by the copy engine
  const dqOverlap = dqOverlapOn(tuning, tcDq, bulk, overlaps(wg, tuning, spec), headDim, warpgroups, shape.ring);  // dS^T then double-buffered
  const dqSmem = 2 * (2 * dqRows + 2 * shape.ring * DQ_BN) * rowElems + slack, dkdvSmem = 2 * (2 * bk + 2 * shape.ring * qt) * rowElems + (tcDq ? (dqOverlap ? 2 : 1) * 2 * bk * 64 : 0) + (bulk ? dqStageBytes(qt, headDim) : 0) + slack;
  const dkdv = dkdvKernel(dkdvEntry, k, spec, tuning, wg, fused, tcDq, bulk, dqOverlap, headDim, shape, sig);
  const kernels = fused ? [prepKernel(prepEntry, sig, headDim), dkdv, storeKernel(storeEntry, sig, headDim)] : [dqKernel(dqEntry, k, spec, tuning, wg, headDim, sig, dqRows, shape.ring), dkdv];
  const persistentStage = tuning.persistent ? { persistent: true } : {};
  const dkdvLaunch = `${dkdvEntry}: grid [ceil(Nk/${bk}), Hkv, B]${tuning.persistent ? ` or any fewer blocks (best: [min(ceil(Nk/${bk})*Hkv*B, SMs), 1, 1], persistent)` : ''}, block [${shape.threads}], dynamic smem ${dkdvSmem} bytes (${bk} keys x ${qt}-query tiles, every query head of the kv head${fused ? '; dQ added to dQacc' : ''})`;
  const launchLines = fused
    ? [`${prepEntry}: grid [ceil(Nq/${FUSED_ROWS}), Hq, B], block [128] (delta, dQacc zeroed)`, dkdvLaunch, `${storeEntry}: grid [ceil(Nq/${FUSED_ROWS}), Hq, B], block [128] (dQ from dQacc)`]
    : [`${dqEntry}: grid [ceil(Nq/${dqRows}), Hq, B], block [${2 * dqRows}], dynamic smem ${dqSmem} bytes (${dqRows} query rows x ${DQ_BN}-key tiles)`, dkdvLaunch];
  const helpers = helpersUsed(CUDA, kernels.join('\n'));
  const header = `// Generated by attnc ${opts.version} from attention '${safeComment(p.name)}' (spec hash ${opts.hash}).
// Target: CUDA-C, backward pass (dQ, dK, dV), storage ${dtype}, head_dim ${headDim}, tensor cores (${wg ? 'wgmma m64nNk16, f32 accumulate; sm_90a only' : 'mma.sync m16n8k16, f32 accumulate; sm_80 and later'}).\n// Backward variants: ${backwardTuningLabel(tuning)}${opts.tuning ? '' : ` (the defaults for ${opts.arch ?? 'sm_80'}, D ${headDim})`}.
// Launch ${fused ? 'all three' : 'both'}, in order, on one stream (${fused ? 'each reads what the one before wrote' : 'the second reads the Delta the first writes'}):
${launchLines.map((l, i) => `//   ${i + 1}. ${l}`).join('\n')}
// ABI: (Q, K, V, O, LSE, dO, dQ, dK, dV, Delta${fused ? ', dQacc' : ''}, B, Hq, Hkv, Nq, Nk${p.params.map((q) => `, ${q.name}:${q.type}`).join('')}${p.inputs.map((t) => `, ${t.name}:${t.elem}*`).join('')});
//      O and LSE as the forward kernel wrote them; Delta: float [B, Hq, Nq] scratch;${fused ? ' dQacc: float [B, Hq, Nq, D] scratch;' : ''} dK, dV summed over the query heads of a kv head.
`;
  const source = [header, PTX_COMMON, ptxMma(dtype as 'f16' | 'bf16'), ...(wg ? [ptxWgmma(dtype as 'f16' | 'bf16', [DQ_BN, qt], false, false, tcDq)] : []), unpackHelper(dtype), ...(tuning.asyncStats ? [STATS_HELPERS] : []), ...(fused && !bulk ? [redHelper(opts.arch === 'sm_90a' || wg)] : []), ...(bulk ? [BULK_HELPERS] : []), ...helpers, '', kernels.join('\n')].join('\n');
  const args: CudaArg[] = [
    ...['Q', 'K', 'V', 'O'].map((name): CudaArg => ({ name, kind: 'ptr', elem: dtype, role: 'tensor' })),
    { name: 'LSE', kind: 'ptr', elem: 'f32', role: 'tensor' },
    ...['dO', 'dQ', 'dK', 'dV'].map((name): CudaArg => ({ name, kind: 'ptr', elem: dtype, role: 'tensor' })),
    { name: 'Delta', kind: 'ptr', elem: 'f32', role: 'tensor' },
    ...(fused ? [{ name: 'dQacc', kind: 'ptr', elem: 'f32', role: 'tensor' } satisfies CudaArg] : []),
    ...['B', 'Hq', 'Hkv', 'Nq', 'Nk'].map((name): CudaArg => ({ name, kind: 'i32', role: 'size' })),
    ...p.params.map((q): CudaArg => ({ name: q.name, kind: q.type, role: 'param' })),
    ...p.inputs.map((t): CudaArg => ({ name: t.name, kind: 'ptr', elem: t.elem, role: 'table' })),
  ];
  const manifest: KernelManifest = {
    attnc: opts.version,
    target: 'cuda',
    pass: 'backward',
    spec: p.name,
    hash: opts.hash,
    entryPoint: dqEntry,
    dtype,
    headDim,
    tile: { bm: dqRows, bn: DQ_BN, threads: 2 * dqRows },
    params: p.params,
    inputs: p.inputs,
    grid: `[ceil(Nq / ${fused ? FUSED_ROWS : dqRows}), Hq, B] then [ceil(Nk / ${bk}), Hkv, B]`,
    abi: {
      convention: 'attnc-cuda-bwd-args-v1',
      args,
      arch: opts.arch ?? null,
      kernel: wg ? 'wgmma' : 'mma',
      tuning: backwardTuningLabel(tuning),
      // Launched in this order, each with its own grid, block and shared memory; both take `args`. A stage's blocks
      // own `bm` query rows (`over` 'queries': grid [ceil(Nq / bm), Hq, B]) or keys ('keys': [ceil(Nk / bm), Hkv, B]).
      stages: (fused ? [
        { entryPoint: prepEntry, what: 'delta = rowsum(dO * O); dQacc zeroed', over: 'queries', bm: FUSED_ROWS, grid: [`ceil(Nq / ${FUSED_ROWS})`, 'Hq', 'B'], block: [128, 1, 1], dynamicSmemBytes: 0 },
        { entryPoint: dkdvEntry, what: 'dK and dV, summed over the query heads of each kv head; dQ added to dQacc', over: 'keys', bm: bk, grid: [`ceil(Nk / ${bk})`, 'Hkv', 'B'], block: [shape.threads, 1, 1], dynamicSmemBytes: dkdvSmem, ...persistentStage },
        { entryPoint: storeEntry, what: 'dQ = dQacc in the storage type', over: 'queries', bm: FUSED_ROWS, grid: [`ceil(Nq / ${FUSED_ROWS})`, 'Hq', 'B'], block: [128, 1, 1], dynamicSmemBytes: 0 },
      ] : [
        { entryPoint: dqEntry, what: 'delta = rowsum(dO * O), then dQ', over: 'queries', bm: dqRows, grid: [`ceil(Nq / ${dqRows})`, 'Hq', 'B'], block: [2 * dqRows, 1, 1], dynamicSmemBytes: dqSmem },
        { entryPoint: dkdvEntry, what: 'dK and dV, summed over the query heads of each kv head', over: 'keys', bm: bk, grid: [`ceil(Nk / ${bk})`, 'Hkv', 'B'], block: [shape.threads, 1, 1], dynamicSmemBytes: dkdvSmem, ...persistentStage },
      ]) satisfies CudaBackwardStage[],
      // Caller-allocated f32 scratch, written and read by the launches: Delta [B, Hq, Nq] (the first launch writes it),
      // and for the single pass dQacc [B, Hq, Nq, D] (zeroed by the first launch).
      scratch: [{ name: 'Delta', elem: 'f32', shape: ['B', 'Hq', 'Nq'] }, ...(fused ? [{ name: 'dQacc', elem: 'f32', shape: ['B', 'Hq', 'Nq', 'D'] }] : [])],
    },
    analysis: { affine: spec.affine, maskFree: spec.maskFree, tileTestReadsTables: spec.tilePerThread !== null, classes: {} },
  };
  return { source, manifest };
}

/** The spec's per-tile shared tables (per-key and per-diagonal values) as a lambda fill_tables(<index>, buf), q0 and kv0 set by `bind`. */
function fillTablesCode(spec: SpecCode, bm: number, bn: number, index: string, bind: string, threads = 128): string {
  const fill = spec.tableFill(bm, bn, threads);
  return `  auto fill_tables = [&](int ${index}, int buf) {
${bind}
    (void)q0; (void)kv0; (void)buf;
${fill.body.join('\n')}
  };`;
}

/** Lines that only a variant has, each on a line of its own after the text they follow ('' when off or empty). */
function also(on: boolean | undefined, lines: string[]): string {
  return on && lines.length ? `\n${lines.join('\n')}` : '';
}

/**
 * An empty asm statement that reads the spec's head values: they are computed before it, so before the products
 * that follow, and never in the window between a wgmma's issue and its wait, where ptxas would have to fence
 * (warpgroup.arrive) so as not to reuse the products' registers (seen with logn's logf at D 64).
 */
function pinned(spec: SpecCode): string[] {
  const vals = spec.headValues.map(({ name, ctype }) => (ctype === 'float' ? `"f"(${name})` : `"r"((int)(${name}))`));
  return vals.length ? [`  asm volatile("" :: ${vals.join(', ')});  // head values before the products (see pinned())`] : [];
}

/** wgmma: each thread's cp.async copies into the async proxy (the tensor cores read them) before the block barrier. */
const ASYNC_FENCE = '\n    attnc_fence_async_smem();';

/** Rows [first, first + count) of a [rows][HEAD_DIM] tensor into padded shared rows (or swizzled atoms), zero past `limit`. */
function copyRows(dst: string, src: string, first: string, count: number, limit: string, swizzled = false): string {
  return `    for (int x = tid; x < ${count} * CHUNKS; x += NTHREADS) {
      const int r = x / CHUNKS, c = x % CHUNKS;
      const bool ok = ${first} + r < ${limit};
      attnc_cp_async16(attnc_smem_addr(${dst} + ${swizzled ? tileChunk(count, 'r', 'c') : 'r * STRIDE + c * 8'}), ${src} + (ok ? (size_t)(${first} + r) * HEAD_DIM + c * 8 : 0), ok);
    }`;
}

/** The accumulators of the warp's 16 rows, rounded to the storage type, into rows [row0, ...) of `dst` below `limit`. */
function storeRows(acc: string, dst: string, row0: string, limit: string, nd: number): string {
  return `  #pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = ${row0} + warp * 16 + g + 8 * h;
    if (row < ${limit}) {
      #pragma unroll
      for (int n = 0; n < ${nd}; ++n)
        *(unsigned*)(${dst} + (size_t)row * HEAD_DIM + n * 8 + 2 * t4) = attnc_pack(${acc}[n][2 * h], ${acc}[n][2 * h + 1]);
    }
  }`;
}

/** Whether a launch takes the overlap order (tuning overlap): wgmma with tables, and g that does not read the dot product. */
function overlaps(wg: boolean, tuning: CudaBackwardTuning, spec: SpecCode): boolean {
  return wg && !!tuning.overlap && !!tuning.tables && spec.affine;
}

/** The element step, or one part of it, on partial tiles (masked) and full ones, as `cond` says. */
function branch(cond: string, step: (masked: boolean, part: 'all' | 'p' | 'ds') => string, part: 'all' | 'p' | 'ds'): string {
  return `    if (${cond}) {
${step(true, part)}
    } else {
${step(false, part)}
    }`;
}

/**
 * The copy pipeline of a loop over live tiles (or items) `v` < `count`, found by `next`, through a ring of `ring`
 * shared stages that `fill(v, stage)` fills with cp.async: the copies before the loop, the wait at the top of a
 * turn (`fence`: wgmma's proxy fence), the next copy issued after it, and the advance at the bottom. With two stages
 * a turn copies the next tile while it computes; with three, the one after it, so that each copy has two turns.
 */
function copyRing(o: { ring: number; v: string; count: string; next: string; fill: (v: string, st: string) => string; fence: string; what: string }) {
  const { v, count, next, fill } = o;
  const first = `  int ${v} = ${next}(0);
  if (${v} < ${count}) ${fill(v, '0')}
  attnc_cp_commit();`;
  if (o.ring === 2) {
    return {
      prologue: first,
      wait: `    attnc_cp_wait<0>();${o.fence}
    __syncthreads();  // ${o.what} visible; the other stage free`,
      issue: `    const int ${v}n = ${next}(${v} + 1);
    if (${v}n < ${count}) ${fill(`${v}n`, 'stage ^ 1')}
    attnc_cp_commit();`,
      advance: `    ${v} = ${v}n;
    stage ^= 1;`,
    };
  }
  return {
    prologue: `${first}
  // Three stages: the one after it is copied too before the loop; each turn copies the one two ahead.
  int ${v}1 = ${v} < ${count} ? ${next}(${v} + 1) : ${count};
  if (${v}1 < ${count}) ${fill(`${v}1`, '1')}
  attnc_cp_commit();`,
    wait: `    attnc_cp_wait<1>();${o.fence}
    __syncthreads();  // ${o.what} visible (the next one's copies may be in flight); stage (stage + 2) % 3 free`,
    issue: `    const int ${v}2 = ${v}1 < ${count} ? ${next}(${v}1 + 1) : ${count};
    if (${v}2 < ${count}) ${fill(`${v}2`, 'stage == 0 ? 2 : stage - 1')}
    attnc_cp_commit();`,
    advance: `    ${v} = ${v}1;
    ${v}1 = ${v}2;
    stage = stage == 2 ? 0 : stage + 1;`,
  };
}

function prelude(entry: string, sig: string, headDim: number, log2e = true, wg = false, threads = 128, batch = true): string {
  return `extern "C" __global__ void __launch_bounds__(${threads}, 1) ${entry}(${sig}) {
  constexpr int HEAD_DIM = ${headDim}, ${wg ? '' : `STRIDE = ${headDim + 8}, `}NTHREADS = ${threads}, CHUNKS = HEAD_DIM / 8;${log2e ? '\n  constexpr float LOG2E = 1.4426950408889634f;' : ''}
${wg ? WG_SMEM_BASE : `  extern __shared__ __align__(16) unsigned char attnc_smem_raw[];
  unsigned short* const attnc_smem = reinterpret_cast<unsigned short*>(attnc_smem_raw);`}
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;${batch ? '\n  const int bb = blockIdx.z;' : ''}`;
}

function dqKernel(entry: string, k: LoweredKernel, spec: SpecCode, tuning: CudaBackwardTuning, wg: boolean, headDim: number, sig: string, bm: number, ring: number): string {
  const threads = 2 * bm, two = bm > OWN;
  const e = elementCode(k, spec, tuning, DQ_BN, false);
  const t = tuning.tables;
  const kd = headDim / 16, nd = headDim / 8, nt = DQ_BN / 8;
  const step = (masked: boolean, part: 'all' | 'p' | 'ds' = 'all') => elementStep(masked ? e.masked : e.plain, {
    lr: 'warp * 16 + g + 8 * (r >> 1)', lc: 'n * 8 + 2 * t4 + (r & 1)', qrow: 'row0 + lr', qi: 'q0 + lr', kvi: 'kv0 + lc',
    lse: 'lse2[r >> 1]', delta: 'dl[r >> 1]',
  }, false, !!t, part);
  const ov = overlaps(wg, tuning, spec);
  // With tables: head values, then per-row values by row slot i (rows g and g + 8 of the warp's 16).
  const rowValues = [
    '', '  // ---- values per (batch, head), and per query row (row slot i: rows g and g + 8 of the warp\'s 16) ----',
    ...spec.headLines, ...spec.rowDecls(2), '  #pragma unroll', '  for (int i = 0; i < 2; ++i) {', '    (void)i;',
    ...spec.rowFill('q0 + warp * 16 + g + 8 * i'), '  }',
  ];
  const pipe = copyRing({
    ring, v: 'j', count: 'n_tiles', next: 'next_live', fence: wg ? ASYNC_FENCE : '', what: 'tile j (and, the first time, Q, dO and the row values)',
    fill: (j, st) => (t ? `{ load_kv(${j}, ${st}); fill_tables(${j}, ${st}); }` : `load_kv(${j}, ${st});`),
  });
  const own = ownedRows(two, 'rows', 'BM');
  const layout = wg
    ? `  unsigned short* const sQ = attnc_smem;              // ${own.layout}
  unsigned short* const sdO = sQ + BM * HEAD_DIM;     // ${own.layout}
  unsigned short* const sK = sdO + BM * HEAD_DIM;     // [${ring}][HEAD_DIM / 64][BN][64], swizzled
  unsigned short* const sV = sK + ${ring} * BN * HEAD_DIM;  // [${ring}][HEAD_DIM / 64][BN][64], swizzled`
    : `  unsigned short* const sQ = attnc_smem;            // [BM][STRIDE]
  unsigned short* const sdO = sQ + BM * STRIDE;     // [BM][STRIDE]
  unsigned short* const sK = sdO + BM * STRIDE;     // [${ring}][BN][STRIDE]
  unsigned short* const sV = sK + ${ring} * BN * STRIDE;  // [${ring}][BN][STRIDE]`;
  const kvStage = wg ? 'st * BN * HEAD_DIM' : 'st * BN * STRIDE';
  const operands = wg
    ? [...own.decl, wgDescs('q', own.base('sQ'), false, true), wgDescs('do', own.base('sdO'), false, true), wgDescs('k', 'sK', true, true), wgDescs('v', 'sV', false, true)].join('\n')
    : `  const unsigned q_addr = ${LANE.a('sQ')}, do_addr = ${LANE.a('sdO')};
  const unsigned k_b = ${LANE.b('sK')}, v_b = ${LANE.b('sV')}, k_bt = ${LANE.bt('sK')};`;
  return `${prelude(entry, sig, headDim, true, wg, threads)}
  constexpr int BM = ${bm}, BN = ${DQ_BN}, NT = BN / 8;
${layout}
  __shared__ float sLse2[BM], sDelta[BM];${also(t, spec.tableDecls(bm, DQ_BN, ring))}
  const int hq = blockIdx.y, hk = hq / (Hq / Hkv);
  const int row0 = blockIdx.x * BM;
  const int q0 = row0 + (Nk - Nq);  // q_idx of the block's first row (bottom-right aligned)
  const size_t rows = (size_t)(bb * Hq + hq) * Nq;
  const unsigned short* gQ = Q + rows * HEAD_DIM;
  const unsigned short* gdO = dO + rows * HEAD_DIM;
  const unsigned short* gK = K + (size_t)(bb * Hkv + hk) * Nk * HEAD_DIM;
  const unsigned short* gV = V + (size_t)(bb * Hkv + hk) * Nk * HEAD_DIM;${also(t, rowValues)}
${tileClassifier(spec)}${also(t, [fillTablesCode(spec, bm, DQ_BN, 'j', '    const int kv0 = j * BN;', threads)])}
  auto load_kv = [&](int j, int st) {
${copyRows(`sK + ${kvStage}`, 'gK', 'j * BN', DQ_BN, 'Nk', wg)}
${copyRows(`sV + ${kvStage}`, 'gV', 'j * BN', DQ_BN, 'Nk', wg)}
  };

  // ---- Q and dO rows; delta = rowsum(dO * O) and the LSE in log2 units, two threads a row ----
${copyRows('sQ', 'gQ', 'row0', bm, 'Nq', wg)}
${copyRows('sdO', 'gdO', 'row0', bm, 'Nq', wg)}
${deltaCode(true)}
${pipe.prologue}

${operands}
  float dq[${nd}][4];
  #pragma unroll
  for (int n = 0; n < ${nd}; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
  float lse2[2], dl[2];
  int stage = 0;
  bool first = true;

  // ---- the live KV tiles ----
  while (j < n_tiles) {
${pipe.wait}
    if (first) {
      first = false;
      #pragma unroll
      for (int h = 0; h < 2; ++h) { lse2[h] = sLse2[warp * 16 + g + 8 * h]; dl[h] = sDelta[warp * 16 + g + 8 * h]; }
    }
${pipe.issue}
    const int kv0 = j * BN;
${wg ? `    const unsigned long long st16 = stage * (BN * HEAD_DIM * 2 / 16);
${wgTwoProducts('q_k', 'k_k', 'do_k', 'v_k', 'BN', 'st16', ov)}` : `    const unsigned st = stage * (BN * STRIDE * 2);
${twoProductsCode('q_addr', 'k_b + st', 'do_addr', 'v_b + st', kd, nt)}`}
${ov ? `    const bool partial_tile = tile_partial(j);
${branch('partial_tile', step, 'p')}
    attnc_wg_wait<0>();  // dP landed
${branch('partial_tile', step, 'ds')}` : branch('tile_partial(j)', step, 'all')}
    // dQ += dS K
${wg ? wgAccumulate([{ acc: 'dq', from: 'dp', bN: 'k_n' }], 'BN', DQ_BN / 16, 'st16') : accumulateCode('dq', 'dp', 'k_bt + st', nd, DQ_BN / 16)}
${pipe.advance}
  }
  attnc_cp_wait<0>();
${storeRows('dq', 'dQ + rows * HEAD_DIM', 'row0', 'Nq', nd)}
}
`;
}

function dkdvKernel(entry: string, k: LoweredKernel, spec: SpecCode, tuning: CudaBackwardTuning, wg: boolean, fused: boolean, tcDq: boolean, bulk: boolean, dqOverlap: boolean, headDim: number, shape: DkdvShape, sig: string): string {
  const { bk, qt, threads, ring } = shape, two = bk > OWN;
  const e = elementCode(k, spec, tuning, bk, true);
  const { tables: t, asyncStats } = tuning;
  const kd = headDim / 16, nd = headDim / 8, nt = qt / 8;
  // An item's query head and tile, as its tile tests read them (q_lo..q_hi; hq for a test that reads the head).
  const itemHead = `    const int hq = hk * group + it / n_qt, qrow0 = (it % n_qt) * QT;
    const int q_lo = qrow0 + (Nk - Nq), q_hi = min(qrow0 + QT, Nq) - 1 + (Nk - Nq);
    (void)hq; (void)q_lo; (void)q_hi;`;
  const windowed = tuning.scanWindow ? spec.itemPerThread : null;
  // One item at a time (the default): warp-cooperative tests, each a dependent round trip where it scans a table.
  const itemLive = `  auto item_live = [&](int it) -> bool {
${itemHead}
${spec.tileQueryLines.join('\n')}
${spec.tileLive.lines.join('\n')}
    return ${spec.tileLive.value};
  };
`;
  // tuning ballotItems, where the test reads no table: 32 items a step, as the forward finds its KV tiles
  const nextItemFn = tuning.ballotItems && spec.itemTestPlain ? `  // 32 items a step, lane l testing item it + l (no collectives in the test); calls are block-uniform, so every
  // lane of the warp is here, and every warp finds the same item.
  auto next_item = [&](int it) -> int {
    for (; it < items; it += 32) {
      const int il = it + lane;
      const unsigned live = __ballot_sync(0xffffffffu, il < items && item_live(il));
      if (live) return it + __ffs(live) - 1;
    }
    return items;
  };` : `  // Block-uniform: every thread walks the same items (the tile tests' table scans are warp-cooperative).
  auto next_item = [&](int it) -> int {
    while (it < items && !item_live(it)) ++it;
    return it;
  };`;
  const [nextItem, itemPartial] = windowed ? ['next_live', 'tile_partial'] : ['next_item', 'item_partial'];
  const itemWindow = windowed ? [
    '  // ---- items classified a window of NTHREADS at a time: thread t tests item tw_base + t with its own scans, so',
    '  // that their latencies overlap (the block\'s key range scanned once, here) ----',
    ...windowed.keyLines,
    '  const int n_tiles = items;',
    '  constexpr int SCAN_BATCH = QT / 4;  // 16-byte loads in flight per thread per table scan',
    '  auto tile_live = [&](int it, bool& part) -> bool {',
    itemHead,
    ...windowed.perThread,
    '  };',
    '  auto tile_partial_scan = [&](int it) -> bool { return item_partial(it); };',
    tileWindow('__syncthreads()'),
  ] : [];
  const step = (masked: boolean, part: 'all' | 'p' | 'ds' = 'all') => elementStep(masked ? e.masked : e.plain, {
    lr: 'warp * 16 + g + 8 * (r >> 1)', lc: 'n * 8 + 2 * t4 + (r & 1)', qrow: 'qrow0 + lc', qi: 'q0 + lc', kvi: 'k0 + lr',
    lse: asyncStats ? 'attnc_lse2(sLse[stage][lc])' : 'sLse2[stage][lc]', delta: 'sDelta[stage][lc]',
  }, true, false, part);
  const ov = overlaps(wg, tuning, spec);
  // tuning lateWait: dV's and dK's products run on beside the single pass's dQ step, waited for at the item's end
  const late = wg && fused && !!tuning.lateWait;
  // The item's head values: with tables, where the element code and the table fill read them.
  const headValues = t ? [...spec.headLines, ...(wg ? pinned(spec) : [])] : [];
  const fillItem = (it: string, st: string) => (t ? `{ load_q(${it}, ${st}); fill_tables(${it}, ${st}); }` : `load_q(${it}, ${st});`);
  const pipe = copyRing({ ring, v: 'it', count: 'items', next: nextItem, fence: wg ? ASYNC_FENCE : '', what: 'item it\'s Q, dO, LSE and delta', fill: fillItem });
  const stats = asyncStats
    ? `    for (int x = tid; x < QT; x += NTHREADS) {
      const int row = qrow0 + x;
      const bool ok = row < Nq;  // past Nq: zeros (p is 0 there: qrow < Nq is part of keep)
      attnc_cp_async4(attnc_smem_addr(&sLse[st][x]), LSE + (ok ? rows + row : 0), ok);
      attnc_cp_async4(attnc_smem_addr(&sDelta[st][x]), Delta + (ok ? rows + row : 0), ok);
    }`
    : `    for (int x = tid; x < QT; x += NTHREADS) {
      const int row = qrow0 + x;
      const float lse = row < Nq ? LSE[rows + row] : ATTNC_NEG_INF;
      sLse2[st][x] = lse == ATTNC_NEG_INF ? -ATTNC_NEG_INF : lse * LOG2E;  // as in the dQ launch: p = 0 for such rows
      sDelta[st][x] = row < Nq ? Delta[rows + row] : 0.f;
    }`;
  const own = ownedRows(two, 'keys', 'BK');
  const layout = wg
    ? `  unsigned short* const sK = attnc_smem;               // ${own.layout}
  unsigned short* const sV = sK + BK * HEAD_DIM;       // ${own.layout}
  unsigned short* const sQ = sV + BK * HEAD_DIM;       // [${ring}][HEAD_DIM / 64][QT][64], swizzled
  unsigned short* const sdO = sQ + ${ring} * QT * HEAD_DIM;  // [${ring}][HEAD_DIM / 64][QT][64], swizzled${tcDq ? `
  unsigned short* const ${dqOverlap ? 'sDS0' : 'sDS'} = sdO + ${ring} * QT * HEAD_DIM;  // ${dqOverlap ? '[2][BK][64]: dS^T of an item and of the one before' : '[BK][64]: dS^T of an item'}, swizzled (dQ's A operand)` : ''}${bulk ? `
  float* const sDQ = reinterpret_cast<float*>(sdO + ${ring} * QT * HEAD_DIM${tcDq ? ` + ${dqOverlap ? '2 * ' : ''}BK * 64` : ''});  // [QT][HEAD_DIM]: an item's dQ, staged` : ''}`
    : `  unsigned short* const sK = attnc_smem;             // [BK][STRIDE]
  unsigned short* const sV = sK + BK * STRIDE;       // [BK][STRIDE]
  unsigned short* const sQ = sV + BK * STRIDE;       // [${ring}][QT][STRIDE]
  unsigned short* const sdO = sQ + ${ring} * QT * STRIDE;  // [${ring}][QT][STRIDE]`;
  const qStage = wg ? 'st * QT * HEAD_DIM' : 'st * QT * STRIDE';
  const operands = wg
    ? [...own.decl, wgDescs('k', own.base('sK'), false, true), wgDescs('v', own.base('sV'), false, true), wgDescs('q', 'sQ', true, true), wgDescs('do', 'sdO', true, true),
      ...(tcDq ? [wgDescs('k_dq', 'sK', true, false), wgDescs('ds', dqOverlap ? 'sDS0' : 'sDS', true, false)] : [])].join('\n')
    : `  const unsigned k_addr = ${LANE.a('sK')}, v_addr = ${LANE.a('sV')};
  const unsigned q_b = ${LANE.b('sQ')}, do_b = ${LANE.b('sdO')}, q_bt = ${LANE.bt('sQ')}, do_bt = ${LANE.bt('sdO')};${fused ? `\n  const unsigned k_dq = ${LANE.bt('sK')};` : ''}`;
  const persistent = !!tuning.persistent;
  const zeroAcc = `  #pragma unroll
  for (int n = 0; n < ${nd}; ++n) { dk[n][0] = dk[n][1] = dk[n][2] = dk[n][3] = 0.f; dv[n][0] = dv[n][1] = dv[n][2] = dv[n][3] = 0.f; }`;
  const state = `  int stage = 0;${bulk ? `
  size_t dq_base = 0;  // the staged item's first row of dQacc, and its rows below Nq (0: none staged)
  int dq_valid = 0;` : ''}`;
  const tileVars = persistent
    ? `  const int hk = work % Hkv, bb = work / Hkv % B;
  const int k0 = work / (Hkv * B) * BK;
`
    : `  const int hk = blockIdx.y, group = Hq / Hkv;
  const int k0 = blockIdx.x * BK;
`;
  const tileSetup = `${tileVars}  const unsigned short* gK = K + (size_t)(bb * Hkv + hk) * Nk * HEAD_DIM;
  const unsigned short* gV = V + (size_t)(bb * Hkv + hk) * Nk * HEAD_DIM;
  // Items: (query head of the group, query tile), head-major.
  const int n_qt = (Nq + QT - 1) / QT, items = group * n_qt;
  // The forward kernel's tile tests with the roles as they are: queries q_lo..q_hi of the item, keys of this block.
  const int kv_lo = k0, kv_hi = min(k0 + BK, Nk) - 1;
${windowed ? '' : itemLive}  auto item_partial = [&](int it) -> bool {
${itemHead}
    if (qrow0 + QT > Nq || k0 + BK > Nk) return true;
${spec.tileQueryLines.join('\n')}
${spec.tilePartialMask.lines.join('\n')}
    return ${spec.tilePartialMask.value};
  };
${windowed ? itemWindow.join('\n') : nextItemFn}
  auto load_q = [&](int it, int st) {
    const int hq = hk * group + it / n_qt, qrow0 = (it % n_qt) * QT;
    const size_t rows = (size_t)(bb * Hq + hq) * Nq;
    const unsigned short* gQ = Q + rows * HEAD_DIM;
    const unsigned short* gdO = dO + rows * HEAD_DIM;
${copyRows(`sQ + ${qStage}`, 'gQ', 'qrow0', qt, 'Nq', wg)}
${copyRows(`sdO + ${qStage}`, 'gdO', 'qrow0', qt, 'Nq', wg)}
${stats}
  };${also(t, [fillTablesCode(spec, qt, bk, 'it', ['    const int hq = hk * group + it / n_qt, q0 = (it % n_qt) * QT + (Nk - Nq), kv0 = k0;', '    (void)hq;', ...spec.headLines].join('\n'), threads)])}

`;
  const loadTile = `  // ---- the block's keys and values, and the first live item ----
${copyRows('sK', 'gK', 'k0', bk, 'Nk', wg)}
${copyRows('sV', 'gV', 'k0', bk, 'Nk', wg)}
${pipe.prologue}`;
  // The item's products and element steps, up to dK's product (the loop's middle, whichever way its ends are laid out).
  const itemBody = `    const int hq = hk * group + it / n_qt, qrow0 = (it % n_qt) * QT, q0 = qrow0 + (Nk - Nq);
    (void)hq;${also(t, headValues)}
${wg ? `    const unsigned long long st16 = stage * (QT * HEAD_DIM * 2 / 16);
${wgTwoProducts('k_k', 'q_k', 'v_k', 'do_k', 'QT', 'st16', ov)}` : `    const unsigned st = stage * (QT * STRIDE * 2);
${twoProductsCode('k_addr', 'q_b + st', 'v_addr', 'do_b + st', kd, nt)}`}
${ov ? `    const bool partial_item = ${itemPartial}(it);
${branch('partial_item', step, 'p')}
    // dV += P^T dO, issued before dS is computed
${wgAccumulate([{ acc: 'dv', from: 's', bN: 'do_n' }], 'QT', qt / 16, 'st16', false)}
    attnc_wg_wait<1>();  // dP landed (dV's product may run on)
${branch('partial_item', step, 'ds')}
    // dK += dS^T Q
${wgAccumulate([{ acc: 'dk', from: 'dp', bN: 'q_n' }], 'QT', qt / 16, 'st16', !late)}` : `${branch(`${itemPartial}(it)`, step, 'all')}
    // dV += P^T dO, dK += dS^T Q
${wg ? wgAccumulate([{ acc: 'dv', from: 's', bN: 'do_n' }, { acc: 'dk', from: 'dp', bN: 'q_n' }], 'QT', qt / 16, 'st16', !late) : `${accumulateCode('dv', 's', 'do_bt + st', nd, qt / 16)}
${accumulateCode('dk', 'dp', 'q_bt + st', nd, qt / 16)}`}`}`;
  const itemLoop = dqOverlap ? dqOverlapLoop(itemBody, bk, nextItem, fillItem, !windowed) : `  while (it < items) {
${pipe.wait}
${pipe.issue}${bulk ? `
    // the last item's dQ, staged and fenced by every thread before the barrier above
    ${DQ_FLUSH}` : ''}
${itemBody}${also(fused, [tcDq ? fusedDqWgmmaCode(bk, threads / 128, bulk) : fusedDqCode(qt, bk, headDim, threads / 32, wg, bulk)])}${also(late, ['    attnc_wg_wait<0>();  // dV\'s and dK\'s products, run beside dQ, are done with the stage before the next barrier frees it'])}
${pipe.advance}
  }
`;
  const lastDq = bulk ? `
  if (dq_valid > 0) {  // the last item's dQ
    attnc_fence_async_smem();
    __syncthreads();
    ${DQ_FLUSH}
  }
  if (tid == 0) attnc_bulk_wait<0>();  // every row added before the block exits` : '';
  const store = (k0: string, rows: string) => `${storeRows('dk', `dK + ${rows} * HEAD_DIM`, k0, 'Nk', nd)}
${storeRows('dv', `dV + ${rows} * HEAD_DIM`, k0, 'Nk', nd)}`;
  // The kernel's start and its shared declarations, both ways.
  const head = `${prelude(entry, sig, headDim, !asyncStats, wg, threads, !persistent)}
  constexpr int BK = ${bk}, QT = ${qt}, NT = QT / 8;
${layout}
  __shared__ float ${asyncStats ? 'sLse' : 'sLse2'}[${ring}][QT], sDelta[${ring}][QT];${also(fused && !tcDq, [dsDecl(qt, bk)])}${also(t, ['  // The spec\'s per-key and per-diagonal tables of an item (query tile, this block\'s keys): keys are the rows.', ...spec.tableDecls(qt, bk, ring)])}
`;
  if (!persistent) {
    return `${head}${tileSetup}${loadTile}

${operands}
  float dk[${nd}][4], dv[${nd}][4];
${zeroAcc}
${state}

${itemLoop}  attnc_cp_wait<0>();${lastDq}
  const size_t kv_rows = (size_t)(bb * Hkv + hk) * Nk;
${store('k0', 'kv_rows')}
}
`;
  }
  // the last tile's rows, recomputed from its number (fewer registers held through the item loop)
  const storePrev = `    const int prev = work - work_stride, prev_k0 = prev / (Hkv * B) * BK;
    const size_t prev_rows = (size_t)(prev / Hkv % B * Hkv + prev % Hkv) * Nk;
${store('prev_k0', 'prev_rows')}`;
  // tuning persistent: the tile's setup, copies and item loop inside a loop over tiles; the last tile's dK and dV
  // stored after the next tile's copies are issued, its last dQ reduction at the next tile's first barrier
  return `${head}  const int group = Hq / Hkv, n_kb = (Nk + BK - 1) / BK, n_work = n_kb * Hkv * B;
${operands}
  float dk[${nd}][4], dv[${nd}][4];
${state}
  // Tiles (key block, kv head, batch), key blocks in order: block b takes tiles b, b + G, ... of the G launched. The
  // last tile, whose dK and dV are still in registers, is work - G (no register of its own held through the items).
  const int work0 = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z), work_stride = gridDim.x * gridDim.y * gridDim.z;
  int work = work0;
  for (; work < n_work; work += work_stride) {
${tileSetup}
  if (work != work0) __syncthreads();  // every warp is done with the last tile's K, V, stages and tables
${loadTile}
  if (work != work0) {  // the last tile's dK and dV, while this tile's copies are in flight
${storePrev}
  }
${zeroAcc}
  stage = 0;
${itemLoop}  attnc_cp_wait<0>();
  }${lastDq}
  if (work != work0) {
${storePrev}
  }
}
`;
}

/** The dK/dV launch's cp.async of LSE and delta (tuning asyncStats), and the LSE in log2 units where it is read. */
const STATS_HELPERS = `// A 4-byte copy to shared memory (zeros when !valid); .ca: 4 bytes is below .cg's 16.
__device__ __forceinline__ void attnc_cp_async4(unsigned dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" :: "r"(dst), "l"(src), "r"(valid ? 4 : 0) : "memory");
}
// The LSE in log2 units; a row with no kept key (LSE -inf) gets +inf, so that its p is 0 wherever it is computed.
__device__ __forceinline__ float attnc_lse2(float lse) {
  return lse == ATTNC_NEG_INF ? -ATTNC_NEG_INF : lse * 1.4426950408889634f;
}
`;

/** Two packed storage values (low half first) to f32. */
function unpackHelper(dtype: StorageDType): string {
  const body = dtype === 'bf16'
    ? '  lo = __uint_as_float(v << 16);\n  hi = __uint_as_float(v & 0xffff0000u);'
    : '  asm("{ .reg .f16 l, h; mov.b32 {l, h}, %2; cvt.f32.f16 %0, l; cvt.f32.f16 %1, h; }" : "=f"(lo), "=f"(hi) : "r"(v));';
  return `// Two packed ${dtype} (low half first) to f32.
__device__ __forceinline__ void attnc_unpack(unsigned v, float& lo, float& hi) {
${body}
}
`;
}
