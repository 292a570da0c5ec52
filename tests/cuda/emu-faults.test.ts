// The CUDA emulator (src/runtime/cuda-emu.ts) can fail: a kernel that deadlocks, splits a warp between collectives
// or overruns its dynamic shared memory stops the launch with an error naming it, unwritten shared memory reads NaN,
// and a generated kernel with one wrong constant (a wgmma descriptor's stride, an ldmatrix without its transpose, a
// backward product's k step, a cp.async or wgmma wait one group short) no longer matches float64, a bulk reduction
// reads its shared memory as late as PTX allows, and a write racing a wgmma's shared-memory reads stops the launch when
// the schedule lets warpgroups drift apart or copies land at issue. Without these, the emulator's tests (emu-cases.ts)
// passing would say little.
import { describe, expect, it } from 'vitest';
import { renderCuda } from '../../src/compiler/render/cuda.ts';
import { renderCudaBackward } from '../../src/compiler/render/cuda-bwd.ts';
import type { CompiledKernel } from '../../src/compiler/manifest.ts';
import { parseBackwardTuning, type CudaBackwardTuning } from '../../src/compiler/render/cuda-bwd-tuning.ts';
import { compareOutputs, gradientError, TOLERANCE } from '../../src/runtime/compare.ts';
import { cudaEmulatorProblem, CudaEmuBackend, emulatorCopiesEarly, emulatorSchedule, emulatorSource, loadCudaEmulator } from '../../src/runtime/cuda-emu.ts';
import { referenceAttention } from '../../src/runtime/reference.ts';
import { referenceBackward } from '../../src/runtime/reference-backward.ts';
import { randomGradient, randomInputs } from '../../src/runtime/random.ts';
import { roundThrough } from '../../src/runtime/half.ts';
import { loadExamples, withEnv } from './suite.ts';

const problem = cudaEmulatorProblem();
if (problem) console.warn(`tests/cuda/emu-faults.test.ts: skipped: ${problem}`);

/** Runs `body` as kernel `k(float* out, const float* in)` on one block of `threads`; the error message, or null. */
function launch(body: string, threads: number, smem = 0, extraArgs = 0): { error: string | null; out: Float32Array } {
  const src = `extern "C" __global__ void __launch_bounds__(${threads}, 1) k(float* __restrict__ out, const float* __restrict__ in) {\n${body}\n}\n`;
  const emu = loadCudaEmulator(src, 'bf16', ['k']);
  const n = threads * 4;
  const out = emu.alloc(n * 4), inp = emu.alloc(n * 4);
  emu.write(inp, Float32Array.from({ length: n }, (_, i) => i));
  emu.fill(out, 0, n * 4);
  const ptr = (p: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(p)); return b; };
  let error: string | null = null;
  try {
    emu.launch('k', [1, 1, 1], [threads, 1, 1], smem, [ptr(out), ptr(inp), ...Array.from({ length: extraArgs }, () => ptr(0))]);
  } catch (e) {
    error = (e as Error).message;
  }
  const res = new Float32Array(emu.read(out, n * 4).buffer.slice(0));
  emu.free(out);
  emu.free(inp);
  return { error, out: res };
}

describe.skipIf(!!problem)('CUDA emulator: faults are reported', () => {
  it('a thread that skips a block barrier deadlocks the block', () => {
    const { error } = launch('if (threadIdx.x != 5) __syncthreads();\nout[threadIdx.x] = 1.f;', 64);
    expect(error).toMatch(/ATTNC_EMU_FAULT: kernel k \(emulated\): deadlock in block 0,0,0: warp 0 waits on a block barrier/);
  });

  it('arguments that do not match the kernel\'s parameters stop the launch before it runs', () => {
    expect(launch('out[threadIdx.x] = 1.f;', 32, 0, 1).error).toMatch(/3 arguments for a kernel of 2 parameters/);
  });

  it('a warp split between two collectives stops the launch', () => {
    const { error } = launch('if (threadIdx.x & 1) __syncwarp(); else (void)__ballot_sync(0xffffffffu, 1);', 32);
    expect(error).toMatch(/is at another collective than thread/);
  });

  it('a copy past the dynamic shared memory the launch asked for stops it', () => {
    const body = `extern __shared__ __align__(16) unsigned char raw[];
attnc_cp_async16(attnc_smem_addr(raw) + 16 * threadIdx.x, in + 4 * threadIdx.x, true);`;
    expect(launch(body, 32, 512).error).toBeNull();
    expect(launch(body, 32, 256).error).toMatch(/outside the launch's 256 bytes of dynamic shared memory/);
  });

  it('a bulk reduction reads its shared memory at the wait that retires it; one never waited for stops the launch', () => {
    // thread 0 stages 1s, issues a reduction of them into out[0..3], then writes 2s over the staging tile
    const body = (waitFirst: boolean, waitAtAll = true) => `extern __shared__ __align__(16) unsigned char raw[];
float* t = reinterpret_cast<float*>(raw);
if (threadIdx.x == 0) {
  for (int i = 0; i < 4; ++i) t[i] = 1.f;
  attnc_bulk_red_add(out, attnc_smem_addr(t), 16);
  attnc_bulk_commit();
  ${waitFirst ? 'attnc_bulk_wait_read<0>();' : ''}
  for (int i = 0; i < 4; ++i) t[i] = 2.f;
  ${waitAtAll && !waitFirst ? 'attnc_bulk_wait<0>();' : ''}
}`;
    const first = launch(body(true), 32, 64), late = launch(body(false), 32, 64);
    expect([first.error, [...first.out.slice(0, 4)]]).toEqual([null, [1, 1, 1, 1]]);
    expect([late.error, [...late.out.slice(0, 4)]]).toEqual([null, [2, 2, 2, 2]]);  // the tile rewritten before the wait: a wrong sum, as on the GPU it may be
    expect(launch(body(false, false), 32, 64).error).toMatch(/a bulk reduction is still pending when the thread exits/);
  });

  it('a write past the end of a global buffer stops the launch; a read past it reads NaN', () => {
    expect(launch('if (threadIdx.x == 0) out[4 * 32 + 1] = 1.f;', 32).error).toMatch(/wrote past the end of a 512-byte buffer \(byte 4 after it\)/);
    const { error, out } = launch('out[threadIdx.x] = in[threadIdx.x + 4 * 32];', 32);
    expect(error).toBeNull();
    expect(out.slice(0, 32).every(Number.isNaN)).toBe(true);
  });

  it('shared memory that nothing wrote reads NaN; what a thread wrote reads back', () => {
    const body = `extern __shared__ __align__(16) unsigned char raw[];
float* s = reinterpret_cast<float*>(raw);
if (threadIdx.x < 16) s[threadIdx.x] = in[threadIdx.x];
__syncthreads();
out[threadIdx.x] = s[threadIdx.x];`;
    const { error, out } = launch(body, 32, 128);
    expect(error).toBeNull();
    expect(Array.from(out.slice(0, 16))).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(out.slice(16, 32).every(Number.isNaN)).toBe(true);
  });

  it('inline PTX the emulator does not define is refused, by name, before anything runs', () => {
    const src = 'extern "C" __global__ void k() {}\n__device__ __forceinline__ void attnc_sleep() { asm volatile("nanosleep.u32 100;"); }\n';
    expect(() => emulatorSource(src, 'bf16', ['k'])).toThrow(/attnc_sleep has inline PTX that the emulator does not define/);
    expect(() => emulatorSource('extern "C" __global__ void k() { asm("trap;"); }\n', 'bf16', ['k'])).toThrow(/inline PTX left outside the wrappers/);
  });

  it('a warp shuffle and a ballot see every lane', () => {
    const { error, out } = launch('out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, in[threadIdx.x], 5) + (float)__popc(__ballot_sync(0xffffffffu, threadIdx.x % 3 == 0));', 64);
    expect(error).toBeNull();
    expect(Array.from(out.slice(0, 64))).toEqual(Array.from({ length: 64 }, (_, i) => (i ^ 5) + 11));
  });
});

/** O of a forward kernel on the emulator against float64, for a kernel source changed by `mutate`. */
async function forwardError(mutate: (src: string) => string, arch: 'sm_80' | 'sm_90a'): Promise<number> {
  const spec = loadExamples(['causal'])[0];
  const k = renderCuda(spec.lowered, { dtype: 'bf16', headDim: 64, hash: 'mut', version: 'mut', arch });
  const kernel: CompiledKernel = { ...k, source: mutate(k.source) };
  const shape = { B: 1, Hq: 2, Hkv: 1, Nq: 200, Nk: 200, D: 64 };
  const call = { ...shape, ...randomInputs(shape, 5), params: {}, tables: {} };
  const got = await new CudaEmuBackend(arch).run(kernel, call);
  const rows = Array.from({ length: 200 }, (_, i) => i);
  const cmp = compareOutputs(got, { ...referenceAttention(spec.block, call, { rows }), rows }, shape);
  return cmp.nanCount > 0 ? Infinity : cmp.maxAbsErrO;
}

/** The largest of dQ, dK, dV's errors of the backward kernels (`wgmma` by default), their source changed by `mutate`. */
async function backwardError(mutate: (src: string) => string, tuning: CudaBackwardTuning = { wgmma: true }, D = 64): Promise<number> {
  const spec = loadExamples(['causal'])[0];
  const shape = { B: 1, Hq: 2, Hkv: 1, Nq: 150, Nk: 150, D };
  const r = randomInputs(shape, 7);
  const call = { ...shape, q: roundThrough('bf16', r.q), k: roundThrough('bf16', r.k), v: roundThrough('bf16', r.v), params: {}, tables: {} };
  const be = new CudaEmuBackend('sm_90a');
  const fwd = await be.run(renderCuda(spec.lowered, { dtype: 'bf16', headDim: D, hash: 'mut', version: 'mut', arch: 'sm_90a' }), call);
  const dO = roundThrough('bf16', randomGradient(shape, 7));
  const k = renderCudaBackward(spec.lowered, { dtype: 'bf16', headDim: D, hash: 'mut', version: 'mut', arch: 'sm_90a', tuning });
  const got = await be.backward({ ...k, source: mutate(k.source) }, call, { o: fwd.o, lse: fwd.lse, dO });
  const want = referenceBackward(spec.block, call, dO);
  return Math.max(...(['dq', 'dk', 'dv'] as const).map((g) => { const e = gradientError(got[g], want[g]); return e.nanCount ? Infinity : e.err; }));
}

/** Replaces `from` (which must be in the source) with `to`. */
const swap = (from: string | RegExp, to: string) => (src: string) => {
  const out = src.replace(from, to);
  if (out === src) throw new Error(`mutation not applied: ${from}`);
  return out;
};

describe.skipIf(!!problem)('CUDA emulator: one wrong constant in a generated kernel fails the reference', () => {
  it('sm_90a forward: V read with its 8-row groups 2 KiB apart instead of 1', async () => {
    expect(await forwardError((s) => s, 'sm_90a')).toBeLessThanOrEqual(TOLERANCE.bf16);
    expect(await forwardError(swap(/attnc_wg_desc\(attnc_smem_addr\(sV\), 1024, 1024\)/, 'attnc_wg_desc(attnc_smem_addr(sV), 1024, 2048)'), 'sm_90a')).toBeGreaterThan(TOLERANCE.bf16);
  }, 120_000);

  it('sm_80 forward: V loaded by ldmatrix without .trans', async () => {
    expect(await forwardError((s) => s, 'sm_80')).toBeLessThanOrEqual(TOLERANCE.bf16);
    expect(await forwardError(swap(/attnc_ldsm_x4_t\(/g, 'attnc_ldsm_x4('), 'sm_80')).toBeGreaterThan(TOLERANCE.bf16);
  }, 120_000);

  it('backward: a cp.async wait that leaves the query tile\'s copies in flight (wait_group 1 for 0)', async () => {
    // The emulator lands copies at the latest point PTX allows, so what no wait orders before a read is not there.
    expect(await backwardError((s) => s, {})).toBeLessThanOrEqual(TOLERANCE.bf16);
    expect(await backwardError(swap("attnc_cp_wait<0>();\n    __syncthreads();  // item it's", "attnc_cp_wait<1>();\n    __syncthreads();  // item it's"), {})).toBeGreaterThan(TOLERANCE.bf16);
  }, 120_000);

  it('wgmma backward: S and dP read while their products may still run (wgmma wait_group 1 for 0)', async () => {
    // wgmma results land at the wait that leaves their group behind; until then the accumulators read NaN.
    expect(await backwardError(swap(/attnc_wg_commit\(\);\n    attnc_wg_wait<0>\(\);\n    if \(item_partial/, 'attnc_wg_commit();\n    attnc_wg_wait<1>();\n    if (item_partial'))).toBe(Infinity);
  }, 120_000);

  it('wgmma backward: a warpgroup rewriting dS^T while the other\'s dQ product may still read it is found when warpgroups drift apart', async () => {
    // dq-overlap with one dS^T buffer instead of two: under the round-robin schedule the warpgroups keep in step and
    // the race does not show; run one warpgroup as far as it goes first (either one) and the emulator's check of
    // wgmma's shared-memory operands at the wait that retires them finds the write.
    const tuning = parseBackwardTuning('tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,wgmma-dq,bulk-dq,dq-overlap') as CudaBackwardTuning;
    const oneBuffer = swap('    ds_buf ^= 1;', '    ds_buf ^= 0;');
    await withEnv({ ATTNC_EMU_SCHEDULE: 'round-robin' }, async () => {
      expect(await backwardError(oneBuffer, tuning, 128)).toBeLessThanOrEqual(TOLERANCE.bf16);
    });
    for (const schedule of ['skew', 'skew-reverse']) {
      await withEnv({ ATTNC_EMU_SCHEDULE: schedule }, async () => {
        expect(await backwardError((src) => src, tuning, 128)).toBeLessThanOrEqual(TOLERANCE.bf16);
        await expect(backwardError(oneBuffer, tuning, 128)).rejects.toThrow(/a wgmma's shared-memory operand changed before the wait that retires it/);
      });
    }
  }, 300_000);

  it('wgmma backward: a copy into the stage that dK\'s product still reads is found when copies land at issue', async () => {
    // The two-warpgroup D = 64 defaults with late-wait's wait moved from the item's end to after the next item's
    // copies are issued (and one before the epilogue): the copy of the item after next overwrites the stage that
    // this item's dV and dK products read. Copies landing at their wait (the default) hide it; landing at issue
    // (ATTNC_EMU_COPIES=early, PTX's other bound) the product's operands change before its wait.
    const tuning = parseBackwardTuning('tables,async-stats,scan-window,wgmma,fused-dq,two-wg,overlap,late-wait,bulk-dq') as CudaBackwardTuning;
    const lateWait = "    attnc_wg_wait<0>();  // dV's and dK's products, run beside dQ, are done with the stage before the next barrier frees it\n";
    const waitAfterCopies = (src: string) => swap("    attnc_cp_commit();\n    // the last item's dQ, staged", "    attnc_cp_commit();\n    attnc_wg_wait<0>();\n    // the last item's dQ, staged")(
      swap('  attnc_cp_wait<0>();\n  if (dq_valid > 0) {', '  attnc_cp_wait<0>();\n  attnc_wg_wait<0>();\n  if (dq_valid > 0) {')(swap(lateWait, '')(src)));
    await withEnv({ ATTNC_EMU_COPIES: 'late' }, async () => {
      expect(await backwardError(waitAfterCopies, tuning)).toBeLessThanOrEqual(TOLERANCE.bf16);
    });
    await withEnv({ ATTNC_EMU_COPIES: 'early' }, async () => {
      expect(await backwardError((src) => src, tuning)).toBeLessThanOrEqual(TOLERANCE.bf16);
      await expect(backwardError(waitAfterCopies, tuning)).rejects.toThrow(/a wgmma's shared-memory operand changed before the wait that retires it/);
    });
  }, 300_000);

  it('ATTNC_EMU_SCHEDULE and ATTNC_EMU_COPIES name a mode; another value is a usage error', () => {
    expect([undefined, '', 'round-robin', 'skew', 'skew-reverse'].map((v) => emulatorSchedule(v))).toEqual([0, 0, 0, 1, 2]);
    expect(() => emulatorSchedule('random')).toThrow(/^ATTNC_EMU_SCHEDULE: 'random' is not one of round-robin, skew, skew-reverse$/);
    expect([undefined, '', 'late', 'early'].map((v) => emulatorCopiesEarly(v))).toEqual([false, false, false, true]);
    expect(() => emulatorCopiesEarly('soon')).toThrow(/^ATTNC_EMU_COPIES: 'soon' is not one of late, early$/);
  });

  it('wgmma backward: the k16 steps of dV += P^T dO one 8-row group short', async () => {
    expect(await backwardError((s) => s)).toBeLessThanOrEqual(TOLERANCE.bf16);
    expect(await backwardError(swap(/kk \* 2048\) \/ 16\)/g, 'kk * 1024) / 16)'))).toBeGreaterThan(TOLERANCE.bf16);
  }, 120_000);
});
