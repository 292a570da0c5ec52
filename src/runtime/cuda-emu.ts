// The CUDA emulator's build and calls: a generated CUDA-C source, its inline-PTX wrappers cut out, is compiled by
// the host C++ compiler against cuda-emu/emu.h (which defines them again from the PTX ISA's semantics and runs each
// block's threads as fibers), into a shared library loaded with koffi. Global memory is host memory: a "device
// pointer" is a host address, so kernel arguments are packed exactly as for cuLaunchKernel.
//
// It is a test tool for machines without an NVIDIA GPU (tests/cuda/emu-cases.ts): it checks what a kernel computes
// (indices, layouts, descriptors, barriers, the tile walk), never how fast, and a GPU run stays the authority.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import type { CompiledKernel, StorageDType } from '../compiler/manifest.ts';
import { UsageError } from '../compiler/compile.ts';
import { cudaLaunches } from '../compiler/render/cuda.ts';
import { cudaBackwardStages } from '../compiler/render/cuda-bwd.ts';
import { backwardCall, forwardCall, type CudaMachine } from './cuda-calls.ts';
import { cacheDir } from './cuda.ts';
import { backwardTuningFromEnv, DeviceError, NoDeviceError, type AttentionCall, type AttentionGradients, type AttentionResult, type Backend, type BackwardInputs, type Codegen, type DeviceLimits } from './device.ts';

const HEADER = join(dirname(fileURLToPath(import.meta.url)), 'cuda-emu', 'emu.h');

/** The wrappers emu.h defines; the source's own definitions of them are cut out (with or without inline PTX). */
export const EMULATED_WRAPPERS = [
  'attnc_smem_addr', 'attnc_cp_async16', 'attnc_cp_async16_at', 'attnc_cp_async4', 'attnc_cp_commit', 'attnc_cp_wait',
  'attnc_cp_wait_all', 'attnc_ex2', 'attnc_max_x2', 'attnc_pack', 'attnc_unpack', 'attnc_ldsm_x4', 'attnc_ldsm_x4_t', 'attnc_mma',
  'attnc_wg_fence', 'attnc_wg_commit', 'attnc_wg_wait', 'attnc_fence_async_smem', 'attnc_setmaxnreg_dec',
  'attnc_setmaxnreg_inc', 'attnc_bar_sync', 'attnc_bar_arrive', 'attnc_mbar_init', 'attnc_mbar_arrive',
  'attnc_mbar_track_cp', 'attnc_mbar_wait', 'attnc_wgmma_ss', 'attnc_wgmma_ss_t', 'attnc_wgmma_rs', 'attnc_wgmma_rs_ones', 'attnc_red_add2',
  'attnc_bulk_red_add', 'attnc_bulk_commit', 'attnc_bulk_wait_read', 'attnc_bulk_wait',
] as const;

/** Index just past the `}` that closes the `{` at `open`, skipping string and character literals and comments. */
function closingBrace(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === "'") {
      for (i++; i < src.length && src[i] !== c; i++) if (src[i] === '\\') i++;
    } else if (c === '/' && src[i + 1] === '/') {
      i = src.indexOf('\n', i);
      if (i < 0) break;
    } else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  throw new Error('cuda-emu: unbalanced braces in the kernel source');
}

/**
 * The source the host compiler builds: the wrappers cut out (every function with inline PTX must be one emu.h
 * defines), `extern __shared__` arrays pointed at the launch's dynamic shared memory, emu.h in front, and one
 * `attnc_emu_launch_<entry>` per kernel, which unpacks cuLaunchKernel-style arguments (8 bytes each).
 */
export function emulatorSource(source: string, dtype: StorageDType, entries: readonly string[]): string {
  const defn = /^(?:template <[^>\n]*> )?__device__ (?:__forceinline__ )?[\w ]+?\b(attnc_\w+)(?:<\d+>)?\(/gm;
  const cuts: Array<[number, number]> = [];
  for (let m = defn.exec(source); m; m = defn.exec(source)) {
    const name = m[1];
    const semi = source.indexOf(';', m.index), brace = source.indexOf('{', m.index);
    if (brace < 0 || (semi >= 0 && semi < brace)) continue;  // a declaration without a body
    const end = closingBrace(source, brace);
    const body = source.slice(m.index, end);
    if ((EMULATED_WRAPPERS as readonly string[]).includes(name)) cuts.push([m.index, end]);
    else if (/\basm\b/.test(body)) throw new Error(`cuda-emu: ${name} has inline PTX that the emulator does not define`);
    defn.lastIndex = end;
  }
  let out = '';
  let at = 0;
  for (const [a, b] of cuts) { out += source.slice(at, a); at = b; }
  out += source.slice(at);
  // An empty asm with inputs only pins values for the device compiler's schedule (pinned() of cuda-bwd.ts): no semantics.
  out = out.replace(/asm volatile\(""(?: :: [^;]*)?\);/g, '/* pinned */');
  out = out.replace(/extern __shared__ (?:__align__\(\d+\) )?unsigned char (\w+)\[\];/g, 'unsigned char* const $1 = attnc_emu_dynamic_smem();');
  if (/\basm\b/.test(out.replace(/\/\/[^\n]*/g, ''))) throw new Error('cuda-emu: inline PTX left outside the wrappers');
  const launchers = entries.map((e) => `extern "C" int attnc_emu_launch_${e}(unsigned char* args, int nargs, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned smem) {
  std::vector<void*> slots(nargs);
  for (int i = 0; i < nargs; ++i) slots[i] = args + 8 * i;
  return emu::launch(${e}, slots.data(), nargs, emu::Dim3{gx, gy, gz}, emu::Dim3{bx, by, bz}, smem);
}`);
  return [`#define EMU_${dtype === 'bf16' ? 'BF16' : 'F16'} 1`, `#include "${HEADER}"`, out, ...launchers, ''].join('\n');
}

/** The first host C++ compiler found (probed once per process), or null. */
let compiler: string | null | undefined;
function cxx(): string | null {
  if (compiler === undefined) compiler = ['g++', 'c++', 'clang++'].find((c) => spawnSync(c, ['--version']).status === 0) ?? null;
  return compiler;
}

/**
 * The host compiler's flags (probed once per process). ISO C++ (not gnu++) keeps floating-point contraction off, so
 * the emulator rounds where the source does. -march=native, where the compiler takes it, makes the products' explicit
 * std::fma one instruction (else a libm call, a sixth of the emulator's time) and lets the compiler vectorize loops,
 * which changes no result: a backward test 29% faster from the cache, 15% with its builds. Since "native" is this
 * processor, the build's key holds its model too.
 */
let build: { flags: string[]; keyPart: string } | undefined;
function cxxBuild(): { flags: string[]; keyPart: string } {
  if (build === undefined) {
    const native = spawnSync(cxx()!, ['-march=native', '-x', 'c++', '-fsyntax-only', '-'], { input: '' }).status === 0;
    const flags = ['-std=c++17', '-O1', ...(native ? ['-march=native'] : []), '-fPIC', '-shared', '-w'];
    build = { flags, keyPart: `\0${flags.join(' ')}\0${native ? cpus()[0]?.model ?? '' : ''}` };
  }
  return build;
}

/** Why the emulator cannot run here (null when it can): it needs Linux (its shared-memory section, mmap'd stacks) and a host C++ compiler. */
export function cudaEmulatorProblem(): string | null {
  if (process.platform !== 'linux') return `the CUDA emulator runs on Linux; this is ${process.platform}`;
  return cxx() ? null : 'the CUDA emulator needs a host C++ compiler (g++, c++ or clang++)';
}

/** A loaded emulator library: a CudaMachine's memory and launches (addresses are host pointers; launches run to completion). */
export type CudaEmulator = Omit<CudaMachine, 'finish' | 'sms'>;

/**
 * The emulator's thread schedule, from ATTNC_EMU_SCHEDULE: 'round-robin' (the default: every thread a slice in turn),
 * 'skew' (a warpgroup runs as far as it can before the next) or 'skew-reverse' (the last warpgroup first). Skewed,
 * warpgroups drift as far apart as the kernel's barriers allow, where a write that races another warpgroup's wgmma
 * shows; a bad value is a UsageError.
 */
export function emulatorSchedule(value = process.env.ATTNC_EMU_SCHEDULE): number {
  const modes: Record<string, number> = { 'round-robin': 0, skew: 1, 'skew-reverse': 2 };
  if (value === undefined || value === '') return 0;
  const mode = modes[value];
  if (mode === undefined) throw new UsageError(`ATTNC_EMU_SCHEDULE: '${value}' is not one of ${Object.keys(modes).join(', ')}`);
  return mode;
}

/**
 * When the emulator's cp.async copies land, from ATTNC_EMU_COPIES: 'late' (the default: at the wait that retires them,
 * so a read no wait orders after them sees the poison) or 'early' (at issue, so a copy into a tile that a pending wgmma
 * still reads changes its operands before its wait); a bad value is a UsageError.
 */
export function emulatorCopiesEarly(value = process.env.ATTNC_EMU_COPIES): boolean {
  if (value === undefined || value === '' || value === 'late') return false;
  if (value === 'early') return true;
  throw new UsageError(`ATTNC_EMU_COPIES: '${value}' is not one of late, early`);
}

/** Loaded emulators by kernel source, dtype and entries, so that a call of a kernel already loaded does no work here. */
const loaded = new Map<string, CudaEmulator>();
/** emu.h as this process first read it: part of each build's key, so a process started after an edit rebuilds. */
let headerText: Buffer | null = null;

/** Builds (cached on disk by sha256 of the emulator source and emu.h) and loads the emulator of one kernel source. */
export function loadCudaEmulator(source: string, dtype: StorageDType, entries: readonly string[]): CudaEmulator {
  const callKey = `${dtype}\0${entries.join(',')}\0${source}`;
  const hit = loaded.get(callKey);
  if (hit) return hit;
  const problem = cudaEmulatorProblem();
  if (problem) throw new NoDeviceError(problem);
  const text = emulatorSource(source, dtype, entries);
  headerText ??= readFileSync(HEADER);
  const key = createHash('sha256').update(text).update(headerText).update(cxxBuild().keyPart).digest('hex');
  const dir = join(cacheDir(), 'cuda-emu');
  const lib = join(dir, `${key}.so`);
  if (!existsSync(lib)) {
    mkdirSync(dir, { recursive: true });
    const cpp = join(dir, `${key}.${process.pid}.cpp`), tmp = `${lib}.${process.pid}.tmp`;
    writeFileSync(cpp, text);
    try {
      execFileSync(cxx()!, [...cxxBuild().flags, '-o', tmp, cpp], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    } catch (e) {
      const err = (e as { stderr?: Buffer }).stderr?.toString() ?? String(e);
      throw new Error(`cuda-emu: the host compiler rejected the emulated kernel (${cpp}):\n${err.split('\n').slice(0, 30).join('\n')}`);
    }
    renameSync(tmp, lib);
    rmSync(cpp, { force: true });
  }
  const so = koffi.load(lib);
  const fn = {
    error: so.func('const char* attnc_emu_error()'),
    alloc: so.func('uint64_t attnc_emu_alloc(size_t)'),
    free: so.func('void attnc_emu_free(uint64_t)'),
    write: so.func('void attnc_emu_write(uint64_t, const void*, size_t)'),
    fill: so.func('void attnc_emu_fill(uint64_t, int, size_t)'),
    read: so.func('void attnc_emu_read(_Out_ void*, uint64_t, size_t)'),
    schedule: so.func('void attnc_emu_schedule(int, int)'),
  };
  const launches = new Map(entries.map((e) => [e, so.func(`int attnc_emu_launch_${e}(const void*, int, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t)`)]));
  const emu: CudaEmulator = {
    alloc: (bytes) => Number(fn.alloc(bytes)),
    write: (ptr, data) => fn.write(ptr, data, data.byteLength),
    fill: (ptr, byte, bytes) => fn.fill(ptr, byte, bytes),
    read: (ptr, bytes) => { const b = Buffer.alloc(bytes); if (bytes) fn.read(b, ptr, bytes); return b; },
    free: (ptr) => fn.free(ptr),
    launch: (entry, grid, block, smem, args) => {
      const f = launches.get(entry);
      if (!f) throw new Error(`cuda-emu: no kernel ${entry} in this source`);
      fn.schedule(emulatorSchedule(), emulatorCopiesEarly() ? 1 : 0);
      const rc = f(Buffer.concat(args), args.length, grid[0], grid[1] ?? 1, grid[2] ?? 1, block[0], block[1] ?? 1, block[2] ?? 1, smem);
      if (rc !== 0) throw new DeviceError('ATTNC_EMU_FAULT', `kernel ${entry} (emulated): ${fn.error()}`);
    },
  };
  loaded.set(callKey, emu);
  return emu;
}

/**
 * The emulator as a Backend (`--backend cuda-emu`): the CUDA kernels a Hopper GPU gets (sm_90a: wgmma, mbarriers,
 * warp specialization; ATTNC_CUDA_KERNEL=mma: the sm_80 mma.sync ones), run on the CPU through forwardCall and
 * backwardCall, the launches CudaBackend makes. Two "SMs", so that a persistent kernel's blocks walk several items.
 */
export class CudaEmuBackend implements Backend {
  readonly name = 'cuda-emu' as const;

  constructor(private readonly arch: 'sm_80' | 'sm_90a' = process.env.ATTNC_CUDA_KERNEL === 'mma' ? 'sm_80' : 'sm_90a') {}

  describe(): string {
    return `CUDA emulator on the CPU (${this.arch} kernels, PTX semantics of src/runtime/cuda-emu/emu.h; checks results, not speed)`;
  }

  codegen(): Extract<Codegen, { target: 'cuda' }> {
    return { target: 'cuda', arch: this.arch, ...backwardTuningFromEnv() };
  }

  limits(): DeviceLimits {  // Hopper's
    return { maxWorkgroupStorageBytes: 232448, maxInvocationsPerWorkgroup: 1024, maxWorkgroupSizeX: 1024, maxStorageBufferBindingSize: 2 ** 40, maxBufferSize: 2 ** 40, maxComputeWorkgroupsPerDimension: 65535 };
  }

  dtypes(): StorageDType[] {
    return ['f32', 'f16', 'bf16'];
  }

  async run(kernel: CompiledKernel, call: AttentionCall): Promise<AttentionResult> {
    return forwardCall(this.machine(kernel), kernel, call, (launch) => launch()).result;
  }

  async backward(kernel: CompiledKernel, call: AttentionCall, inputs: BackwardInputs): Promise<AttentionGradients> {
    return backwardCall(this.machine(kernel), kernel, call, inputs);
  }

  dispose(): void {}

  private machine(kernel: CompiledKernel): CudaMachine {
    const m = kernel.manifest;
    const entries = m.pass === 'backward' ? cudaBackwardStages(m).map((s) => s.entryPoint) : cudaLaunches(m).map((c) => c.entryPoint);
    return { ...loadCudaEmulator(kernel.source, m.dtype, entries), sms: 2, finish: () => {} };
  }
}

export async function openCudaEmu(arch?: 'sm_80' | 'sm_90a'): Promise<CudaEmuBackend> {
  const problem = cudaEmulatorProblem();
  if (problem) throw new NoDeviceError(problem);
  return new CudaEmuBackend(arch);
}
