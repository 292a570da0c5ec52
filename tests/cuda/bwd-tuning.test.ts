// The CUDA backward's variants under evaluation (render/cuda-bwd.ts CudaBackwardTuning): how they are named on the
// command line and in ATTNC_CUDA_BWD, that a bad name is one clear line, that they name their artifacts apart, and
// that the defaults render the kernels that ran on a GPU (goldens: tests/golden/cuda/*.bwd.d64.cu).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { artifactHash } from '../../src/compiler/compile.ts';
import { cudaBackwardGrid, cudaBackwardStages, renderCudaBackward } from '../../src/compiler/render/cuda-bwd.ts';
import { backwardTuningLabel, parseBackwardTuning, type CudaBackwardTuning } from '../../src/compiler/render/cuda-bwd-tuning.ts';
import { backwardTuningFromEnv } from '../../src/runtime/device.ts';
import { loadExamples } from './suite.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const attnc = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/attnc.js'), 'compile', ...args], { cwd: ROOT, encoding: 'utf8' });

describe('CUDA backward variants', () => {
  afterEach(() => { delete process.env.ATTNC_CUDA_BWD; });

  it('parse and print the same names; an unknown one is a reason, not a throw', () => {
    expect(parseBackwardTuning('tables,async-stats')).toEqual({ tables: true, asyncStats: true });
    expect(parseBackwardTuning('wgmma,scan-window')).toEqual({ wgmma: true, scanWindow: true });
    expect(parseBackwardTuning(' scan-window ,none')).toEqual({ scanWindow: true });
    expect(parseBackwardTuning('none')).toEqual({});
    expect(parseBackwardTuning('default')).toBeUndefined();
    expect(parseBackwardTuning('tables,bogus')).toBe("unknown backward variant 'bogus': expected a comma list of tables, async-stats, scan-window, wgmma, fused-dq, two-wg, three-stages, overlap, late-wait, wgmma-dq, bulk-dq, ballot-items, persistent, dq-overlap, or 'default' (the arch's defaults) or 'none' (the first kernels)");
    expect(backwardTuningLabel({ scanWindow: true, tables: true })).toBe('tables,scan-window');
    expect(backwardTuningLabel({})).toBe('none');
    expect(backwardTuningLabel(undefined)).toBe('');
  });

  it('ATTNC_CUDA_BWD reaches the backends\' code generation; a bad value is a UsageError', () => {
    expect(backwardTuningFromEnv()).toEqual({});
    process.env.ATTNC_CUDA_BWD = 'tables';
    expect(backwardTuningFromEnv()).toEqual({ cudaBackward: { tables: true } });
    process.env.ATTNC_CUDA_BWD = 'fast';
    expect(() => backwardTuningFromEnv()).toThrow(/^ATTNC_CUDA_BWD: unknown backward variant 'fast'/);
  });

  it('a variant names its artifact apart; the defaults do not change the name', () => {
    const base = { target: 'cuda' as const, dtype: 'bf16' as const, headDim: 64, pass: 'backward' as const };
    const plain = artifactHash('text', 'b', base);
    expect(artifactHash('text', 'b', { ...base, cudaBackward: undefined })).toBe(plain);
    expect(artifactHash('text', 'b', { ...base, cudaBackward: {} })).not.toBe(plain);
    expect(artifactHash('text', 'b', { ...base, cudaBackward: { tables: true } })).not.toBe(plain);
  });

  it('the manifest and the header say which variants a kernel has; the defaults say nothing', () => {
    const [causal] = loadExamples(['causal']);
    const opts = { dtype: 'bf16' as const, headDim: 64, hash: 'h', version: 'v' };
    const v = renderCudaBackward(causal.lowered, { ...opts, tuning: { asyncStats: true } });
    expect(v.manifest.abi.tuning).toBe('async-stats');
    expect(v.source).toContain('// Backward variants: async-stats.');
    expect(v.source).toContain('attnc_cp_async4(attnc_smem_addr(&sLse[st][x])');
    // wgmma: Hopper's products where the head dim is whole 64-column atoms; elsewhere mma.sync as before
    const w = renderCudaBackward(causal.lowered, { ...opts, tuning: { wgmma: true } });
    expect(w.manifest.abi.kernel).toBe('wgmma');
    expect(w.source).toContain('attnc_wgmma_rs(&dk[8 * h][0], a_dp[kk], q_n + st16');
    expect(w.source).toContain('#error "this kernel uses wgmma');
    expect(renderCudaBackward(causal.lowered, { ...opts, headDim: 96, tuning: { wgmma: true } }).manifest.abi.kernel).toBe('mma');
    // the defaults: per arch and head dim (defaultBackwardTuning), named in the header and the manifest too
    const hopper = renderCudaBackward(causal.lowered, { ...opts, arch: 'sm_90a' });
    expect(hopper.manifest.abi.tuning).toBe('tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,bulk-dq');
    expect(hopper.source).toContain('// Backward variants: tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,bulk-dq (the defaults for sm_90a, D 64).');
    expect(cudaBackwardStages(hopper.manifest).map((s) => [s.bm, s.block[0]])).toContainEqual([128, 256]);
    // at D = 64 a mask whose tile test scans a table (document ids) keeps one warpgroup a block
    const [doc] = loadExamples(['document']);
    const docTuning = renderCudaBackward(doc.lowered, { ...opts, arch: 'sm_90a' }).manifest.abi.tuning;
    expect(docTuning).toBe('tables,async-stats,scan-window,wgmma,fused-dq,bulk-dq');
    const wide = renderCudaBackward(causal.lowered, { ...opts, arch: 'sm_90a', headDim: 128 });
    expect(wide.manifest.abi.tuning).toBe('tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,wgmma-dq,bulk-dq');
    expect(renderCudaBackward(doc.lowered, { ...opts, arch: 'sm_90a', headDim: 128 }).manifest.abi.tuning).toBe(wide.manifest.abi.tuning);
    // where a window ends a key block's live queries before the last, the dK/dV walk finds them 32 at a time
    for (const name of ['sliding_window', 'sinks_window', 'scale_invariant_window']) {
      const [windowed] = loadExamples([name]);
      expect(renderCudaBackward(windowed.lowered, { ...opts, arch: 'sm_90a' }).manifest.abi.tuning, name).toBe(`${hopper.manifest.abi.tuning},ballot-items`);
      expect(renderCudaBackward(windowed.lowered, { ...opts, arch: 'sm_90a', headDim: 128 }).manifest.abi.tuning, name).toBe(`${wide.manifest.abi.tuning},ballot-items`);
    }
    expect(cudaBackwardStages(wide.manifest).map((s) => [s.bm, s.block[0]])).toContainEqual([128, 256]);
    // D = 96 has no wgmma kernel: mma.sync without the single pass, as the first A/B chose for the wide head dims
    expect(renderCudaBackward(causal.lowered, { ...opts, arch: 'sm_90a', headDim: 96 }).manifest.abi.tuning).toBe('tables,async-stats,scan-window,wgmma');
    const ampere = renderCudaBackward(causal.lowered, { ...opts, arch: 'sm_80' });
    expect([ampere.manifest.abi.tuning, ampere.manifest.abi.kernel]).toEqual(['tables,async-stats,scan-window', 'mma']);
    // wgmma asked for on sm_80 stays mma.sync; 'none' is the first kernels
    expect(renderCudaBackward(causal.lowered, { ...opts, arch: 'sm_80', tuning: { wgmma: true } }).manifest.abi.kernel).toBe('mma');
    expect(renderCudaBackward(causal.lowered, { ...opts, tuning: {} }).manifest.abi.tuning).toBe('none');
  });

  it('two-wg: blocks of two warpgroups, 128 rows, in both launches; the single pass splits dQ over 8 warps; wgmma only', () => {
    const [causal] = loadExamples(['causal']);
    const opts = { dtype: 'bf16' as const, hash: 'h', version: 'v', arch: 'sm_90a' as const };
    const shape = (r: ReturnType<typeof renderCudaBackward>) => cudaBackwardStages(r.manifest).map((s) => [s.bm, s.block[0]]);
    const two = renderCudaBackward(causal.lowered, { ...opts, headDim: 128, tuning: { wgmma: true, tables: true, twoWarpgroups: true } });
    expect(shape(two)).toEqual([[128, 256], [128, 256]]);
    expect(two.source).toContain('constexpr int BK = 128, QT = 64, NT = QT / 8;');
    expect(two.source).toContain('const int wg_keys = (warp >> 2) * 64 * HEAD_DIM;');
    expect(two.source).toContain('__launch_bounds__(256, 1)');
    // without it, one warpgroup and 32-query tiles at D = 128
    const one = renderCudaBackward(causal.lowered, { ...opts, headDim: 128, tuning: { wgmma: true, tables: true } });
    expect(shape(one)).toEqual([[64, 128], [64, 128]]);
    expect(one.source).toContain('constexpr int BK = 64, QT = 32, NT = QT / 8;');
    // with the single pass: prep, dK/dV of 128 keys, store; each warp adds 16 queries x 32 columns of dQ at D = 64
    const fused = renderCudaBackward(causal.lowered, { ...opts, headDim: 64, tuning: { wgmma: true, twoWarpgroups: true, fusedDq: true } });
    expect(shape(fused)).toEqual([[64, 128], [128, 256], [64, 128]]);
    expect(fused.source).toContain('constexpr int DC = 32;');
    // mma.sync kernels (sm_80, or no wgmma) keep one warpgroup
    expect(shape(renderCudaBackward(causal.lowered, { ...opts, arch: 'sm_80', headDim: 128, tuning: { wgmma: true, twoWarpgroups: true } }))).toEqual([[64, 128], [64, 128]]);
    expect(shape(renderCudaBackward(causal.lowered, { ...opts, headDim: 64, tuning: { twoWarpgroups: true } }))).toEqual([[64, 128], [64, 128]]);
  });

  it('wgmma-dq: the single pass\'s dQ on wgmma where items have 64 queries and D\'s column blocks split evenly', () => {
    const [causal] = loadExamples(['causal']);
    const opts = { dtype: 'bf16' as const, hash: 'h', version: 'v', arch: 'sm_90a' as const };
    const base = { wgmma: true, tables: true, fusedDq: true, wgmmaDq: true };
    const onWgmma = (headDim: number, twoWarpgroups: boolean) => {
      const r = renderCudaBackward(causal.lowered, { ...opts, headDim, tuning: { ...base, twoWarpgroups } });
      return [r.source.includes('attnc_wgmma_ss_t(&dq[0][0]'), r.source.includes('__shared__ __align__(16) unsigned short sDS[')];
    };
    expect(onWgmma(64, false)).toEqual([true, false]);   // one warpgroup, 64 columns
    expect(onWgmma(128, true)).toEqual([true, false]);   // two warpgroups, 64 columns each
    expect(onWgmma(64, true)).toEqual([false, true]);    // two warpgroups, one 64-column block: mma.sync's split
    expect(onWgmma(128, false)).toEqual([false, true]);  // 32-query items: below wgmma's M
    // dS^T lives in the dynamic shared memory, 16 KiB more there for 128 keys
    const stages = (t: object) => cudaBackwardStages(renderCudaBackward(causal.lowered, { ...opts, headDim: 128, tuning: { ...base, twoWarpgroups: true, ...t } }).manifest);
    expect(stages({}).find((x) => x.entryPoint.endsWith('_dkdv'))!.dynamicSmemBytes - stages({ wgmmaDq: false }).find((x) => x.entryPoint.endsWith('_dkdv'))!.dynamicSmemBytes).toBe(128 * 64 * 2);
  });

  it('bulk-dq: an item\'s dQ staged in shared memory and added by one bulk reduction; wgmma single pass only', () => {
    const [causal] = loadExamples(['causal']);
    const opts = { dtype: 'bf16' as const, hash: 'h', version: 'v', arch: 'sm_90a' as const, headDim: 128 };
    const base = { wgmma: true, tables: true, fusedDq: true, twoWarpgroups: true };
    const bulk = renderCudaBackward(causal.lowered, { ...opts, tuning: { ...base, bulkDq: true } });
    expect(bulk.source).toContain('cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32');
    expect(bulk.source).toContain('attnc_bulk_red_add(dQacc + dq_base * HEAD_DIM, attnc_smem_addr(sDQ), dq_valid * HEAD_DIM * 4);');
    expect(bulk.source).toContain('if (tid == 0) attnc_bulk_wait_read<0>();');   // before the barrier that frees sDQ
    expect(bulk.source).toContain('if (tid == 0) attnc_bulk_wait<0>();');        // before the block exits
    expect(bulk.source).not.toContain('attnc_red_add2(');
    // the staging tile: 64 queries x D f32 more dynamic shared memory for the dK/dV launch
    const dkdvSmem = (t: CudaBackwardTuning) => cudaBackwardStages(renderCudaBackward(causal.lowered, { ...opts, tuning: t }).manifest).find((x) => x.entryPoint.endsWith('_dkdv'))!.dynamicSmemBytes;
    expect(dkdvSmem({ ...base, bulkDq: true }) - dkdvSmem(base)).toBe(64 * 128 * 4);
    // without the single pass, or on mma.sync (sm_80), it is ignored
    expect(renderCudaBackward(causal.lowered, { ...opts, tuning: { wgmma: true, bulkDq: true } }).source).not.toContain('attnc_bulk_red_add(');
    const ampere = renderCudaBackward(causal.lowered, { ...opts, arch: 'sm_80', tuning: { ...base, bulkDq: true } }).source;
    expect([ampere.includes('attnc_bulk_red_add('), ampere.includes('attnc_red_add2(')]).toEqual([false, true]);
  });

  it('ballot-items: the dK/dV launch tests 32 items a step where the mask\'s test reads no table', () => {
    const [causal, doc] = loadExamples(['causal', 'document']);
    const opts = { dtype: 'bf16' as const, hash: 'h', version: 'v', arch: 'sm_90a' as const, headDim: 64 };
    const ballot = '__ballot_sync(0xffffffffu, il < items && item_live(il))';
    expect(renderCudaBackward(causal.lowered, { ...opts, tuning: { wgmma: true, ballotItems: true } }).source).toContain(ballot);
    expect(renderCudaBackward(causal.lowered, { ...opts, tuning: { wgmma: true } }).source).toContain('while (it < items && !item_live(it)) ++it;');
    // document's test scans tables (warp-cooperative, or scan-window's windows): one item at a time there
    for (const scanWindow of [false, true]) expect(renderCudaBackward(doc.lowered, { ...opts, tuning: { wgmma: true, scanWindow, ballotItems: true } }).source).not.toContain(ballot);
  });

  it('persistent: the dK/dV launch walks its tiles with a grid stride; its stage says so and takes one block per SM', () => {
    const [causal] = loadExamples(['causal']);
    const opts = { dtype: 'bf16' as const, hash: 'h', version: 'v', arch: 'sm_90a' as const, headDim: 128 };
    const base = { tables: true, asyncStats: true, wgmma: true, fusedDq: true, twoWarpgroups: true, bulkDq: true };
    const on = renderCudaBackward(causal.lowered, { ...opts, tuning: { ...base, persistent: true } });
    const off = renderCudaBackward(causal.lowered, { ...opts, tuning: base });
    const dkdv = (m: typeof on) => cudaBackwardStages(m.manifest).find((x) => x.entryPoint.endsWith('_dkdv'))!;
    expect([dkdv(on).persistent, dkdv(off).persistent]).toEqual([true, undefined]);
    expect(cudaBackwardStages(on.manifest).filter((x) => x.persistent)).toHaveLength(1);  // prep and store keep their grids
    expect(on.source).toContain('for (; work < n_work; work += work_stride) {');
    expect(on.source).toContain('const int hk = work % Hkv, bb = work / Hkv % B;');
    expect(on.source).toContain('or any fewer blocks (best: [min(ceil(Nk/128)*Hkv*B, SMs), 1, 1], persistent)');
    expect(off.source).not.toContain('work_stride');
    expect(off.source).toContain('const int hk = blockIdx.y, group = Hq / Hkv;');
    // the last tile's dK and dV are stored after the next tile's copies are issued, and once more after the loop
    const body = on.source.slice(on.source.indexOf('_bwd_dkdv('));
    const copies = body.indexOf('// ---- the block\'s keys and values, and the first live item ----'), stores = body.indexOf('// the last tile\'s dK and dV, while this tile\'s copies are in flight');
    expect(copies).toBeGreaterThan(0);
    expect(stores).toBeGreaterThan(copies);
    // the grid: the full one without an SM count; with one, as many blocks as SMs and never more than the tiles
    const call = { B: 2, Hq: 4, Hkv: 2, Nq: 1000, Nk: 1000 };
    expect(cudaBackwardGrid(dkdv(on), call)).toEqual([8, 2, 2]);
    expect(cudaBackwardGrid(dkdv(on), call, 132)).toEqual([32, 1, 1]);
    expect(cudaBackwardGrid(dkdv(on), call, 20)).toEqual([20, 1, 1]);
    expect(cudaBackwardGrid(dkdv(off), call, 20)).toEqual([8, 2, 2]);
  });

  it('dq-overlap: dQ\'s product waited for by the next item, dS^T double-buffered; with wgmma-dq, bulk-dq and the overlap order only', () => {
    const byName = new Map(loadExamples(['causal', 'softcap', 'document']).map((x) => [x.name, x]));
    const [causal, softcap, doc] = ['causal', 'softcap', 'document'].map((n) => byName.get(n)!);
    const opts = { dtype: 'bf16' as const, hash: 'h', version: 'v', arch: 'sm_90a' as const, headDim: 128 };
    const base = { tables: true, asyncStats: true, scanWindow: true, wgmma: true, fusedDq: true, twoWarpgroups: true, overlap: true, lateWait: true, wgmmaDq: true, bulkDq: true };
    const on = renderCudaBackward(causal.lowered, { ...opts, tuning: { ...base, dqOverlap: true } });
    const off = renderCudaBackward(causal.lowered, { ...opts, tuning: base });
    const dkdvSmem = (m: typeof on) => cudaBackwardStages(m.manifest).find((x) => x.entryPoint.endsWith('_dkdv'))!.dynamicSmemBytes;
    expect(dkdvSmem(on) - dkdvSmem(off)).toBe(128 * 64 * 2);  // a second dS^T buffer
    const body = on.source.slice(on.source.indexOf('_bwd_dkdv('));
    // the order of an item: the last item's dQ waited for and staged, this item's products, dS^T, the flush, dQ issued
    // and not waited for, dV's and dK's products waited for, the next item's barrier
    const at = (text: string) => body.indexOf(text);
    const marks = ['attnc_wg_wait<0>();  // the last item\'s dQ landed', 'if (dq_pending) {', 'attnc_wg_wait<1>();  // S landed',
      'unsigned short* const sDS = sDS0 + ds_buf * (BK * 64);', 'attnc_bulk_red_add(', 'attnc_wgmma_ss_t(&dq[0][0], ds_n + ds_buf * (BK * 64 * 2 / 16)',
      'attnc_wg_wait<1>();  // dV\'s and dK\'s products done', '__syncthreads();  // item itn\'s Q, dO, LSE and delta visible; this item\'s stage free'];
    const positions = marks.map(at);
    expect(positions.every((x) => x > 0), JSON.stringify(positions)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(off.source).not.toContain('dq_pending');
    // the walk: in the shadow where the item test reads no table, after the staging where it scans tables (document)
    expect(body).toContain('itn = it < items ? next_item(it + 1) : items;  // the item after it, found in the shadow too');
    const docBody = renderCudaBackward(doc.lowered, { ...opts, tuning: { ...base, dqOverlap: true } }).source;
    expect(docBody).toContain('    const int itn = next_live(it + 1);');
    // ignored without the overlap order (softcap's g reads the dot product), wgmma-dq or bulk-dq
    expect(renderCudaBackward(softcap.lowered, { ...opts, tuning: { ...base, dqOverlap: true } }).source).not.toContain('dq_pending');
    expect(renderCudaBackward(causal.lowered, { ...opts, tuning: { ...base, bulkDq: false, dqOverlap: true } }).source).not.toContain('dq_pending');
    expect(renderCudaBackward(causal.lowered, { ...opts, tuning: { ...base, wgmmaDq: false, dqOverlap: true } }).source).not.toContain('dq_pending');
  });

  it('overlap: S and dP in two commit groups, dV issued before dS; only where g does not read the dot product', () => {
    const [causal, softcap] = loadExamples(['causal', 'softcap']);
    const opts = { dtype: 'bf16' as const, hash: 'h', version: 'v', arch: 'sm_90a' as const, headDim: 64 };
    const tuning = { wgmma: true, tables: true, overlap: true };
    const src = renderCudaBackward(causal.lowered, { ...opts, tuning }).source;
    expect(src.match(/attnc_wg_wait<1>\(\);  \/\/ S landed/g)).toHaveLength(2);  // both launches
    expect(src).toContain('attnc_wg_wait<1>();  // dP landed (dV\'s product may run on)');
    expect(src).toContain('dp[n][r] = keep ? s[n][r] * (dp[n][r] - sDelta[stage][lc])');
    // softcap's g reads the dot product (tanh's derivative); without tables the element code is the IR's: no overlap
    for (const [spec, t] of [[softcap, tuning], [causal, { wgmma: true, overlap: true }]] as const) {
      expect(renderCudaBackward(spec.lowered, { ...opts, tuning: t }).source).not.toContain('// S landed');
    }
  });

  it('compile --cuda-bwd: written into the module or the .cu; misuse is one clear line and exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-bwd-cli-'));
    const ok = attnc('examples/document.attn', '--target', 'cuda', '--backward', '--dtype', 'bf16', '--cuda-bwd', 'scan-window', '-o', dir);
    expect(ok.status, ok.stderr).toBe(0);
    expect(readFileSync(join(dir, 'document.bf16.d64.bwd.cu'), 'utf8')).toContain('auto tile_live = [&](int it, bool& part) -> bool {');
    const torch = attnc('examples/causal.attn', '--target', 'torch', '--dtype', 'bf16', '--cuda-bwd', 'tables');
    expect(torch.status, torch.stderr).toBe(0);
    expect(torch.stdout).toContain('// Backward variants: tables.');
    for (const [args, line] of [
      [['--target', 'cuda', '--dtype', 'bf16', '--cuda-bwd', 'tables'], '--cuda-bwd is for --target torch, or --target cuda --backward'],
      [['--target', 'torch', '--dtype', 'bf16', '--cuda-bwd', 'nope'], "unknown backward variant 'nope'"],
    ] as const) {
      const r = attnc('examples/causal.attn', ...args);
      expect(r.status).toBe(2);
      expect(r.stderr.split('\n')[0]).toContain(line);  // then, for option errors, the pointer to --help
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  }, 60_000);
});
