// What every runtime backend offers. `check`, `run` and the tests talk to
// this interface; WebGPU and CUDA implement it.
import type { CompiledKernel, StorageDType } from '../compiler/manifest.ts';
import { parseBackwardTuning, type CudaBackwardTuning } from '../compiler/render/cuda-bwd-tuning.ts';
import { UsageError } from '../compiler/compile.ts';

export interface AttentionShape {
  B: number;
  Hq: number;
  Hkv: number;
  Nq: number;
  Nk: number;
  D: number;
}

export interface AttentionCall extends AttentionShape {
  /** [B, Hq, Nq, D], [B, Hkv, Nk, D], [B, Hkv, Nk, D], float32. */
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** Every param of the manifest (defaults filled in by the caller). */
  params: Record<string, number>;
  /** Every table input of the manifest, by name. */
  tables: Record<string, Int32Array | Float32Array>;
}

export interface AttentionResult {
  /** [B, Hq, Nq, D] float32 (converted from the storage dtype). */
  o: Float32Array;
  /** [B, Hq, Nq] natural-log LSE; -Infinity for rows with no kept key. */
  lse: Float32Array;
}

/** The backward pass's inputs beyond the call: the forward kernel's O and LSE, and the gradient of O. */
export interface BackwardInputs {
  /** [B, Hq, Nq, D] and [B, Hq, Nq], as the forward kernel returned them. */
  o: Float32Array;
  lse: Float32Array;
  /** [B, Hq, Nq, D] float32. */
  dO: Float32Array;
}

export interface AttentionGradients {
  /** [B, Hq, Nq, D], [B, Hkv, Nk, D], [B, Hkv, Nk, D] float32 (converted from the storage dtype). */
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
}

/** Limits a backend reports so the compiler can size tiles. */
export interface DeviceLimits {
  maxWorkgroupStorageBytes: number;
  maxInvocationsPerWorkgroup: number;
  maxWorkgroupSizeX: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupsPerDimension: number;
}

export type Codegen = { target: 'wgsl' } | { target: 'cuda'; arch: 'sm_80' | 'sm_90a'; cudaBackward?: CudaBackwardTuning };

/**
 * ATTNC_CUDA_BWD (e.g. `tables,async-stats`, or `none`): the CUDA backward variants that the CUDA and torch backends
 * compile, so that scripts/gpu-verify.sh can check each against float64. Unset or `default`: the arch's defaults.
 */
export function backwardTuningFromEnv(): { cudaBackward?: CudaBackwardTuning } {
  const v = process.env.ATTNC_CUDA_BWD;
  if (!v) return {};
  const t = parseBackwardTuning(v);
  if (typeof t === 'string') throw new UsageError(`ATTNC_CUDA_BWD: ${t}`);
  return t ? { cudaBackward: t } : {};
}

export interface Backend {
  /** ts: the `--target ts` module of the kernel, on a WebGPU device; torch: the `--target torch` module, from PyTorch. */
  readonly name: 'webgpu' | 'cuda' | 'cuda-emu' | 'ts' | 'torch';
  /** One line naming the adapter or GPU actually used. */
  describe(): string;
  limits(): DeviceLimits;
  /** What the compiler renders for this device: WGSL, or CUDA-C for an architecture. */
  codegen(): Codegen;
  /** Storage dtypes this backend can run. */
  dtypes(): StorageDType[];
  run(kernel: CompiledKernel, call: AttentionCall): Promise<AttentionResult>;
  /** dQ, dK, dV with a backward kernel (`pass: 'backward'`); only where the backend has them (WebGPU). */
  backward?(kernel: CompiledKernel, call: AttentionCall, inputs: BackwardInputs): Promise<AttentionGradients>;
  /** Releases the device and everything it holds. */
  dispose(): void;
}

/** A GPU-side failure with the API's own name for it (e.g. CUDA_ERROR_OUT_OF_MEMORY, GPUValidationError). */
export class DeviceError extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
    this.name = 'DeviceError';
  }
}

/** No device of this kind on this machine: the CLI says so in one line and exits 2. */
export class NoDeviceError extends Error {
  override name = 'NoDeviceError';
}

/**
 * The limits every WebGPU implementation guarantees (the spec's defaults):
 * kernels compiled for these run on any adapter. `compile` uses them unless
 * told to size for the local device.
 */
export const DEFAULT_WEBGPU_LIMITS: DeviceLimits = Object.freeze({
  maxWorkgroupStorageBytes: 16384,
  maxInvocationsPerWorkgroup: 256,
  maxWorkgroupSizeX: 256,
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxComputeWorkgroupsPerDimension: 65535,
});
