// One attention call on a CUDA machine, forward or backward: upload, launch as the manifest's ABI says, read back,
// free. Shared by the driver-API backend (cuda.ts) and the CPU emulator (cuda-emu.ts), so that the
// emulator runs exactly the launches, grids, argument packing and poisoning that a GPU gets.
import type { CompiledKernel, StorageDType } from '../compiler/manifest.ts';
import { cudaLaunchFor, type CudaArg } from '../compiler/render/cuda.ts';
import { cudaBackwardGrid, cudaBackwardStages } from '../compiler/render/cuda-bwd.ts';
import { own } from '../compiler/own.ts';
import { DeviceError, type AttentionCall, type AttentionGradients, type AttentionResult, type BackwardInputs } from './device.ts';
import { fromBf16Array, fromF16Array, toBf16Array, toF16Array } from './half.ts';

/** Device memory and launches (addresses as numbers). launch() may queue; finish() waits and names a failure. */
export interface CudaMachine {
  alloc(bytes: number): number;
  write(ptr: number, data: ArrayBufferView): void;
  fill(ptr: number, byte: number, bytes: number): void;
  read(ptr: number, bytes: number): Buffer;
  free(ptr: number): void;
  launch(entry: string, grid: number[], block: number[], smem: number, args: Buffer[]): void;
  finish(what: string): void;
  /** SM count, for the grid of a persistent kernel. */
  readonly sms: number;
}

/** The call's allocations: alloc, upload (alloc + write), and freeAll for its `finally`. */
function allocations(m: CudaMachine): { alloc: (bytes: number) => number; upload: (data: ArrayBufferView) => number; freeAll: () => void } {
  const allocs: number[] = [];
  const alloc = (bytes: number): number => {
    const p = m.alloc(Math.max(bytes, 16));
    allocs.push(p);
    return p;
  };
  const upload = (data: ArrayBufferView): number => {
    const p = alloc(data.byteLength);
    if (data.byteLength) m.write(p, data);
    return p;
  };
  return { alloc, upload, freeAll: () => { for (const p of allocs.splice(0)) m.free(p); } };
}

/** `bytes` of device memory at `ptr`, as f32 (storage types widened). */
function download(m: CudaMachine, ptr: number, bytes: number, dt: StorageDType): Float32Array {
  const raw = m.read(ptr, bytes);
  const copy = raw.buffer.slice(raw.byteOffset, raw.byteOffset + bytes);
  return dt === 'f32' ? new Float32Array(copy) : (dt === 'f16' ? fromF16Array : fromBf16Array)(new Uint16Array(copy));
}

const storeAs = (dt: StorageDType) => (x: Float32Array): ArrayBufferView => (dt === 'f32' ? x : dt === 'f16' ? toF16Array(x) : toBf16Array(x));

/** The kernel arguments in ABI order, one 8-byte buffer each: device pointers, sizes, params, tables (uploaded here). */
function argBuffers(args: CudaArg[], ptrs: Record<string, number>, call: AttentionCall, upload: (data: ArrayBufferView) => number): Buffer[] {
  const sizes: Record<string, number> = { B: call.B, Hq: call.Hq, Hkv: call.Hkv, Nq: call.Nq, Nk: call.Nk };
  return args.map((a) => {
    const buf = Buffer.alloc(8);
    if (a.role === 'tensor') buf.writeBigUInt64LE(BigInt(ptrs[a.name]));
    else if (a.role === 'size') buf.writeInt32LE(sizes[a.name]);
    else if (a.role === 'param') {
      const v = own(call.params, a.name);
      if (v === undefined) throw new DeviceError('ATTNC_MISSING_PARAM', `param '${a.name}' has no value`);
      if (a.kind === 'i32') buf.writeInt32LE(v | 0); else buf.writeFloatLE(v);
    } else {
      const t = own(call.tables, a.name);
      if (!t) throw new DeviceError('ATTNC_MISSING_INPUT', `table '${a.name}' was not given`);
      const data = a.elem === 'i32' ? Int32Array.from(t) : Float32Array.from(t);
      buf.writeBigUInt64LE(BigInt(upload(data)));
    }
    return buf;
  });
}

/**
 * Blocks of a persistent kernel (abi.persistent): one per SM slot, never more than the work items.
 * ATTNC_CUDA_MAX_BLOCKS caps it lower, so that small test shapes give each block several items in turn.
 */
function persistentBlocks(items: number, sms: number, blocksPerSm: number): number {
  const cap = Number(process.env.ATTNC_CUDA_MAX_BLOCKS ?? 0);
  return Math.max(1, Math.min(items, sms * blocksPerSm, cap > 0 ? cap : Infinity));
}

function checkGrid(grid: number[]): void {
  if (grid[1] > 65535 || grid[2] > 65535) throw new DeviceError('ATTNC_GRID_TOO_LARGE', `grid ${grid.join('x')} exceeds 65535 in y/z`);
}

/**
 * The forward kernel on one call: uploads Q, K, V (converted to the storage dtype on the host) and the tables,
 * poisons O and LSE, hands `body` the launch (it may launch several times, e.g. to time it), waits, reads O and LSE.
 */
export function forwardCall<T>(m: CudaMachine, kernel: CompiledKernel, call: AttentionCall, body: (launch: () => void) => T): { result: AttentionResult; extra: T } {
  const man = kernel.manifest;
  const abi = man.abi as { args: CudaArg[] };
  const { B, Hq, Nq, Nk, D } = call;
  const cfg = cudaLaunchFor(man, Nk, Nq);  // the main kernel, or a variant of the source for short or long rows
  if (D !== man.headDim) throw new DeviceError('ATTNC_BAD_SHAPE', `kernel was compiled for head_dim ${man.headDim}, call has ${D}`);
  const dt = man.dtype, store = storeAs(dt);
  const { alloc, upload, freeAll } = allocations(m);
  try {
    const ptrs: Record<string, number> = { Q: upload(store(call.q)), K: upload(store(call.k)), V: upload(store(call.v)) };
    const oBytes = B * Hq * Nq * D * (dt === 'f32' ? 4 : 2), lseBytes = B * Hq * Nq * 4;
    ptrs.O = alloc(oBytes);
    ptrs.LSE = alloc(lseBytes);
    // Poison the outputs: an element the kernel forgets to write reads NaN.
    m.fill(ptrs.O, 0xff, oBytes);
    m.fill(ptrs.LSE, 0xff, lseBytes);
    const args = argBuffers(abi.args, ptrs, call, upload);
    const grid = cfg.persistent ? [persistentBlocks(Math.ceil(Nq / cfg.bm) * Hq * B, m.sms, cfg.blocksPerSm), 1, 1] : [Math.ceil(Nq / cfg.bm), Hq, B];
    checkGrid(grid);
    const extra = body(() => m.launch(cfg.entryPoint, grid, cfg.block, cfg.dynamicSmemBytes, args));
    m.finish(`kernel ${cfg.entryPoint}`);
    return { result: { o: download(m, ptrs.O, oBytes, dt), lse: download(m, ptrs.LSE, lseBytes, 'f32') }, extra };
  } finally {
    freeAll();
  }
}

/**
 * The backward kernels (manifest pass 'backward', render/cuda-bwd.ts): uploads Q, K, V, O, LSE and dO, launches
 * abi.stages in order (the second reads the Delta scratch the first writes), reads dQ, dK, dV back.
 */
export function backwardCall(m: CudaMachine, kernel: CompiledKernel, call: AttentionCall, inputs: BackwardInputs): AttentionGradients {
  const man = kernel.manifest;
  if (man.pass !== 'backward') throw new Error(`backward(): ${man.entryPoint} is a forward kernel (compile with pass 'backward')`);
  const args = (man.abi as { args: CudaArg[] }).args, stages = cudaBackwardStages(man);
  const { B, Hq, Hkv, Nq, Nk, D } = call;
  if (D !== man.headDim) throw new DeviceError('ATTNC_BAD_SHAPE', `kernel was compiled for head_dim ${man.headDim}, call has ${D}`);
  const dt = man.dtype, store = storeAs(dt);
  const { alloc, upload, freeAll } = allocations(m);
  try {
    const ptrs: Record<string, number> = {
      Q: upload(store(call.q)), K: upload(store(call.k)), V: upload(store(call.v)), O: upload(store(inputs.o)),
      LSE: upload(inputs.lse), dO: upload(store(inputs.dO)),
    };
    // The launches' f32 scratch (Delta; dQacc for the single pass), shapes named by the call's sizes.
    const dims: Record<string, number> = { B, Hq, Hkv, Nq, Nk, D };
    for (const sc of (man.abi as { scratch: Array<{ name: string; shape: string[] }> }).scratch) ptrs[sc.name] = alloc(sc.shape.reduce((n, d) => n * dims[d], 4));
    const bytes = { dQ: B * Hq * Nq * D * 2, dK: B * Hkv * Nk * D * 2, dV: B * Hkv * Nk * D * 2 };
    for (const [name, n] of Object.entries(bytes)) {
      ptrs[name] = alloc(n);
      m.fill(ptrs[name], 0xff, n);  // poisoned: an element no kernel writes reads NaN
    }
    const argBufs = argBuffers(args, ptrs, call, upload);
    for (const st of stages) {
      const grid = cudaBackwardGrid(st, call, persistentBlocks(Infinity, m.sms, 1));
      if (grid[0] === 0) continue;
      checkGrid(grid);
      m.launch(st.entryPoint, grid, st.block, st.dynamicSmemBytes, argBufs);
    }
    m.finish(`kernels ${stages.map((x) => x.entryPoint).join(', ')}`);
    return { dq: download(m, ptrs.dQ, bytes.dQ, dt), dk: download(m, ptrs.dK, bytes.dK, dt), dv: download(m, ptrs.dV, bytes.dV, dt) };
  } finally {
    freeAll();
  }
}
