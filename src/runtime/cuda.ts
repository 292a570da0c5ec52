// The CUDA backend: driver API + NVRTC through koffi (cuda-ffi.ts).
//
// run(): compile the kernel source with NVRTC for the device's architecture
// (sm_90a on Hopper, sm_XY otherwise), cache the cubin on disk (key: sha256
// of source + arch + NVRTC version), load it, upload Q/K/V (converted to the
// storage dtype on the host, src/runtime/half.ts) and the tables, launch with
// the manifest's ABI (src/compiler/render/cuda.ts), read O and LSE back, and
// free every allocation, also on errors.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CompiledKernel } from '../compiler/manifest.ts';
import { cudaLaunches } from '../compiler/render/cuda.ts';
import { cudaBackwardStages } from '../compiler/render/cuda-bwd.ts';
import { backwardCall, forwardCall, type CudaMachine } from './cuda-calls.ts';
import { backwardTuningFromEnv, DeviceError, NoDeviceError, type AttentionCall, type AttentionGradients, type AttentionResult, type BackwardInputs, type Backend, type Codegen, type DeviceLimits } from './device.ts';
import { check, checkNvrtc, loadCudaLibs, type CudaLibs } from './cuda-ffi.ts';
import { CLOCK_PROBE_ENTRY, CLOCK_PROBE_SOURCE, CLOCK_PROBE_SPINS, probeMhz } from './cuda-clock-probe.ts';

const ATTR = { maxThreadsPerBlock: 1, maxBlockDimX: 2, maxGridDimY: 6, smCount: 16, ccMajor: 75, ccMinor: 76, smemOptin: 97 };
const FUNC_ATTR_MAX_DYNAMIC_SMEM = 8;
const FUNC_ATTR_PREFERRED_SMEM_CARVEOUT = 9;

/** A loaded module and its kernels by entry point (the main one and its variants). */
interface Loaded { module: unknown; fns: Map<string, unknown> }

/**
 * Launch times in ms over `iters` timed launches: the median, the fastest and the 90th percentile (a spread between
 * the median and the 90th says the kernel's speed varies from launch to launch). With the clock probe: every launch's
 * time in launch order, each with the SM clock (MHz) the probe measured right after it (cuda-clock-probe.ts).
 */
export interface CudaTiming { medianMs: number; minMs: number; p90Ms: number; iters: number; launches?: { ms: number; mhz: number }[] }

export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  private readonly modules = new Map<string, Loaded>();
  private disposed = false;

  constructor(
    private readonly libs: CudaLibs,
    private readonly dev: number,
    private readonly ctx: unknown,
    private readonly info: { name: string; arch: string; cc: number; smemOptin: number; maxThreads: number; sms: number; nvrtc: string; driver: number },
  ) {}

  describe(): string {
    const i = this.info;
    return `CUDA ${i.name} (${i.arch}, ${i.sms} SMs, driver ${Math.floor(i.driver / 1000)}.${(i.driver % 1000) / 10}, NVRTC ${i.nvrtc})`;
  }

  get arch(): string { return this.info.arch; }

  /**
   * Hopper (compute 9.0) gets the wgmma kernels; every other GPU the mma.sync
   * ones (built for sm_80, which runs on later archs too). ATTNC_CUDA_KERNEL=mma
   * keeps Hopper on the mma.sync kernels (for comparing the two there).
   */
  codegen(): Extract<Codegen, { target: 'cuda' }> {
    const hopper = this.info.cc === 90 && process.env.ATTNC_CUDA_KERNEL !== 'mma';
    return { target: 'cuda', arch: hopper ? 'sm_90a' : 'sm_80', ...backwardTuningFromEnv() };
  }

  limits(): DeviceLimits {
    return {
      maxWorkgroupStorageBytes: this.info.smemOptin,
      maxInvocationsPerWorkgroup: this.info.maxThreads,
      maxWorkgroupSizeX: this.info.maxThreads,
      maxStorageBufferBindingSize: 2 ** 40,
      maxBufferSize: 2 ** 40,
      maxComputeWorkgroupsPerDimension: 65535,
    };
  }

  dtypes(): ('f32' | 'f16' | 'bf16')[] {
    return this.info.cc >= 80 ? ['f32', 'f16', 'bf16'] : ['f32'];
  }

  async run(kernel: CompiledKernel, call: AttentionCall): Promise<AttentionResult> {
    return this.withCall(kernel, call, (launch) => { launch(); return null; }).then((r) => r.result);
  }

  /**
   * Times the kernel alone (events around each launch) after `warmup` launches; median of `iters`.
   * By default each launch is waited for before the next; `queued` records all of them back to back and
   * waits once at the end, as bench/run.py does (the GPU never idles between launches).
   */
  async time(kernel: CompiledKernel, call: AttentionCall, iters = 20, warmup = 3, opts: { queued?: boolean; clockProbe?: boolean } = {}): Promise<CudaTiming> {
    if (opts.clockProbe && opts.queued) throw new Error('time: the clock probe runs between launches, so not with queued launches');
    const { extra } = await this.withCall(kernel, call, (launch) => {
      const cu = this.libs.cu;
      for (let i = 0; i < warmup; i++) launch();
      const pairs = opts.queued ? iters : 1;
      const events: unknown[][] = [];
      const times: number[] = [], mhz: number[] = [];
      let probe: ReturnType<CudaBackend['clockProbe']> | null = null;
      try {
        if (opts.clockProbe) probe = this.clockProbe();
        for (let i = 0; i < 2 * pairs; i++) {
          const e: unknown[] = [null];
          check(this.libs, cu.cuEventCreate(e, 0), 'cuEventCreate');
          events.push(e);
        }
        const elapsed = (a: unknown[], b: unknown[]) => {
          const ms = [0];
          check(this.libs, cu.cuEventElapsedTime(ms, a[0], b[0]), 'cuEventElapsedTime');
          return ms[0];
        };
        for (let i = 0; i < iters; i++) {
          const [a, b] = [events[2 * (i % pairs)], events[2 * (i % pairs) + 1]];
          check(this.libs, cu.cuEventRecord(a[0], null), 'cuEventRecord');
          launch();
          check(this.libs, cu.cuEventRecord(b[0], null), 'cuEventRecord');
          if (!opts.queued) {
            check(this.libs, cu.cuEventSynchronize(b[0]), 'cuEventSynchronize');
            times.push(elapsed(a, b));
            if (probe) mhz.push(probe.measure());
          }
        }
        if (opts.queued) {
          check(this.libs, cu.cuEventSynchronize(events[2 * pairs - 1][0]), 'cuEventSynchronize');
          for (let i = 0; i < pairs; i++) times.push(elapsed(events[2 * i], events[2 * i + 1]));
        }
      } finally {
        for (const e of events) cu.cuEventDestroy(e[0]);
        probe?.free();
      }
      const launches = probe ? times.map((ms, i) => ({ ms, mhz: mhz[i] })) : undefined;
      times.sort((x, y) => x - y);
      return { medianMs: times[times.length >> 1], minMs: times[0], p90Ms: times[Math.min(times.length - 1, Math.floor(times.length * 0.9))], iters, launches };
    });
    return extra!;
  }

  /**
   * The clock probe (cuda-clock-probe.ts), loaded once per backend, with an output buffer for one block per SM:
   * measure() launches it, waits and returns the effective SM clock in MHz; free() releases the buffer.
   */
  private clockProbe(): { measure: () => number; free: () => void } {
    const { cu } = this.libs;
    const ck = (r: unknown, what: string) => check(this.libs, r, what);
    const loaded = this.modules.get(CLOCK_PROBE_ENTRY) ?? this.loadModule(CLOCK_PROBE_ENTRY, CLOCK_PROBE_SOURCE, [CLOCK_PROBE_ENTRY]);
    const fn = loaded.fns.get(CLOCK_PROBE_ENTRY);
    const blocks = this.info.sms, bytes = blocks * 16;
    const out = [0];
    ck(cu.cuMemAlloc(out, bytes), 'cuMemAlloc(clock probe)');
    const args = [Buffer.alloc(8), Buffer.alloc(8)];
    args[0].writeBigUInt64LE(BigInt(out[0]));
    args[1].writeInt32LE(CLOCK_PROBE_SPINS);
    const host = Buffer.alloc(bytes);
    return {
      measure: () => {
        ck(cu.cuLaunchKernel(fn, blocks, 1, 1, 32, 1, 1, 0, null, args, null), 'cuLaunchKernel(clock probe)');
        ck(cu.cuCtxSynchronize(), 'kernel attnc_clock_probe');
        ck(cu.cuMemcpyDtoH(host, out[0], bytes), 'cuMemcpyDtoH(clock probe)');
        return probeMhz(new BigUint64Array(host.buffer.slice(host.byteOffset, host.byteOffset + bytes)));
      },
      free: () => void cu.cuMemFree(out[0]),
    };
  }

  /** Free and total device memory in bytes (cuMemGetInfo), for leak checks. */
  memoryInfo(): { free: number; total: number } {
    check(this.libs, this.libs.cu.cuCtxSetCurrent(this.ctx), 'cuCtxSetCurrent');
    const free = [0], total = [0];
    check(this.libs, this.libs.cu.cuMemGetInfo(free, total), 'cuMemGetInfo');
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.modules.values()) this.libs.cu.cuModuleUnload(m.module);
    this.modules.clear();
    this.libs.cu.cuDevicePrimaryCtxRelease(this.dev);
  }

  private async withCall<T>(kernel: CompiledKernel, call: AttentionCall, body: (launch: () => void) => T): Promise<{ result: AttentionResult; extra: T }> {
    return forwardCall(this.machine(kernel), kernel, call, body);
  }

  /**
   * The backward kernels (manifest pass 'backward', render/cuda-bwd.ts): uploads Q, K, V, O, LSE and dO, launches
   * abi.stages in order on the null stream (the second reads the Delta scratch the first writes), reads dQ, dK, dV back.
   */
  async backward(kernel: CompiledKernel, call: AttentionCall, inputs: BackwardInputs): Promise<AttentionGradients> {
    return backwardCall(this.machine(kernel), kernel, call, inputs);
  }

  /** This GPU as a CudaMachine (cuda-calls.ts) for the kernels of one source: the driver API on the null stream. */
  private machine(kernel: CompiledKernel): CudaMachine {
    if (this.disposed) throw new Error('CUDA backend used after dispose()');
    const { cu } = this.libs;
    const ck = (r: unknown, what: string) => check(this.libs, r, what);
    ck(cu.cuCtxSetCurrent(this.ctx), 'cuCtxSetCurrent');
    const loaded = this.load(kernel);
    return {
      sms: this.info.sms,
      alloc: (bytes) => { const out = [0]; ck(cu.cuMemAlloc(out, bytes), `cuMemAlloc(${bytes})`); return out[0]; },
      write: (ptr, data) => ck(cu.cuMemcpyHtoD(ptr, data, data.byteLength), 'cuMemcpyHtoD'),
      fill: (ptr, byte, bytes) => ck(cu.cuMemsetD8(ptr, byte, bytes), 'cuMemsetD8'),
      read: (ptr, bytes) => { const raw = Buffer.alloc(bytes); if (bytes) ck(cu.cuMemcpyDtoH(raw, ptr, bytes), 'cuMemcpyDtoH'); return raw; },
      free: (ptr) => void cu.cuMemFree(ptr),
      launch: (entry, g, b, smem, args) => ck(cu.cuLaunchKernel(loaded.fns.get(entry), g[0], g[1], g[2], b[0], b[1] ?? 1, b[2] ?? 1, smem, null, args, null), 'cuLaunchKernel'),
      finish: (what) => ck(cu.cuCtxSynchronize(), what),
    };
  }

  private load(kernel: CompiledKernel): Loaded {
    const key = createHash('sha256').update(kernel.source).update(kernel.manifest.entryPoint).digest('hex');
    const hit = this.modules.get(key);
    if (hit) return hit;
    const { cu } = this.libs;
    const m = kernel.manifest;
    const launches = m.pass === 'backward' ? cudaBackwardStages(m).map((st) => ({ ...st, blocksPerSm: 1 })) : cudaLaunches(m);
    const loaded = this.loadModule(key, kernel.source, launches.map((cfg) => cfg.entryPoint));
    // Every kernel of the source (the main one and its variants, or the backward stages), each with its shared-memory limits.
    for (const cfg of launches) {
      const fn = loaded.fns.get(cfg.entryPoint);
      const smem = cfg.dynamicSmemBytes;
      if (smem > this.info.smemOptin) throw new DeviceError('CUDA_ERROR_INVALID_VALUE', `kernel ${cfg.entryPoint} needs ${smem} bytes of shared memory, device allows ${this.info.smemOptin}`);
      check(this.libs, cu.cuFuncSetAttribute(fn, FUNC_ATTR_MAX_DYNAMIC_SMEM, smem), 'cuFuncSetAttribute(max dynamic shared memory)');
      // A kernel built for 2 blocks per SM needs the whole carveout for shared memory (the driver may pick less).
      if (cfg.blocksPerSm > 1) check(this.libs, cu.cuFuncSetAttribute(fn, FUNC_ATTR_PREFERRED_SMEM_CARVEOUT, 100), 'cuFuncSetAttribute(preferred shared memory carveout)');
    }
    return loaded;
  }

  /** Source -> cubin (NVRTC, cached on disk) -> a module kept under `key` (unloaded by dispose()), with its kernels by name. */
  private loadModule(key: string, source: string, entries: string[]): Loaded {
    const { cu } = this.libs;
    const mod: unknown[] = [null];
    check(this.libs, cu.cuModuleLoadData(mod, compileCubin(this.libs, source, this.info.arch, this.info.nvrtc)), 'cuModuleLoadData');
    const loaded: Loaded = { module: mod[0], fns: new Map() };
    this.modules.set(key, loaded);  // unloaded by dispose() even if a function below fails
    for (const entry of entries) {
      const fn: unknown[] = [null];
      check(this.libs, cu.cuModuleGetFunction(fn, mod[0], entry), `cuModuleGetFunction(${entry})`);
      loaded.fns.set(entry, fn[0]);
    }
    return loaded;
  }
}

/** attnc's on-disk cache: ATTNC_CACHE_DIR, else ~/.cache/attnc (cubins here; the CUDA emulator's libraries too). */
export function cacheDir(): string {
  return process.env.ATTNC_CACHE_DIR ?? join(homedir(), '.cache', 'attnc');
}

/** NVRTC source -> cubin, cached on disk by sha256(source, arch, NVRTC version). */
export function compileCubin(libs: CudaLibs, source: string, arch: string, nvrtcVersion: string): Buffer {
  const key = createHash('sha256').update(source).update('\0' + arch + '\0' + nvrtcVersion).digest('hex');
  const dir = join(cacheDir(), 'cuda');
  const file = join(dir, `${key}.cubin`);
  try {
    return readFileSync(file);
  } catch {
    // not cached yet
  }
  const n = libs.nvrtc;
  const prog: unknown[] = [null];
  checkNvrtc(libs, n.nvrtcCreateProgram(prog, source, 'attnc_kernel.cu', 0, null, null), 'nvrtcCreateProgram');
  try {
    const opts = [`--gpu-architecture=${arch}`, '--std=c++17'];
    const rc = n.nvrtcCompileProgram(prog[0], opts.length, opts);
    if (rc !== 0) {
      const size = [0];
      n.nvrtcGetProgramLogSize(prog[0], size);
      const log = Buffer.alloc(Math.max(1, size[0]));
      n.nvrtcGetProgramLog(prog[0], log);
      checkNvrtc(libs, rc, `NVRTC compile for ${arch}`, log.toString('utf8').replace(/\0+$/, ''));
    }
    const size = [0];
    checkNvrtc(libs, n.nvrtcGetCUBINSize(prog[0], size), 'nvrtcGetCUBINSize');
    const cubin = Buffer.alloc(size[0]);
    checkNvrtc(libs, n.nvrtcGetCUBIN(prog[0], cubin), 'nvrtcGetCUBIN');
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, cubin);
      renameSync(tmp, file);
    } catch {
      // a read-only cache is not an error
    }
    return cubin;
  } finally {
    n.nvrtcDestroyProgram(prog);
  }
}

/** Opens the first CUDA device (or `ordinal`). Throws NoDeviceError with one line when there is none. */
export async function openCuda(opts: { ordinal?: number } = {}): Promise<CudaBackend> {
  const libs = loadCudaLibs();
  const { cu } = libs;
  const ck = (r: unknown, what: string) => check(libs, r, what);
  const init = cu.cuInit(0) as number;
  if (init !== 0) {
    const name: [string | null] = [null];
    cu.cuGetErrorName(init, name);
    throw new NoDeviceError(`no usable CUDA device: cuInit failed with ${name[0] ?? init}`);
  }
  const count = [0];
  ck(cu.cuDeviceGetCount(count), 'cuDeviceGetCount');
  const ordinal = opts.ordinal ?? 0;
  if (count[0] <= ordinal) {
    throw new NoDeviceError(`no CUDA device ${ordinal} (found ${count[0]})`);
  }
  const dev = [0];
  ck(cu.cuDeviceGet(dev, ordinal), 'cuDeviceGet');
  const attr = (a: number) => { const v = [0]; ck(cu.cuDeviceGetAttribute(v, a, dev[0]), 'cuDeviceGetAttribute'); return v[0]; };
  const nameBuf = Buffer.alloc(256);
  ck(cu.cuDeviceGetName(nameBuf, 256, dev[0]), 'cuDeviceGetName');
  const major = attr(ATTR.ccMajor), minor = attr(ATTR.ccMinor);
  const cc = major * 10 + minor;
  // Hopper gets the arch-specific target (wgmma/setmaxnreg are legal there).
  const arch = cc === 90 ? 'sm_90a' : `sm_${cc}`;
  const ver = [0], vmaj = [0], vmin = [0];
  ck(cu.cuDriverGetVersion(ver), 'cuDriverGetVersion');
  libs.nvrtc.nvrtcVersion(vmaj, vmin);
  const ctx: unknown[] = [null];
  ck(cu.cuDevicePrimaryCtxRetain(ctx, dev[0]), 'cuDevicePrimaryCtxRetain');
  ck(cu.cuCtxSetCurrent(ctx[0]), 'cuCtxSetCurrent');
  return new CudaBackend(libs, dev[0], ctx[0], {
    name: nameBuf.toString('utf8').replace(/\0.*$/s, ''),
    arch, cc,
    smemOptin: attr(ATTR.smemOptin),
    maxThreads: attr(ATTR.maxThreadsPerBlock),
    sms: attr(ATTR.smCount),
    nvrtc: `${vmaj[0]}.${vmin[0]}`,
    driver: ver[0],
  });
}
