// The manifest that travels with every compiled kernel. Runtimes and
// embedding targets read only this (and the kernel source), never the
// compiler's internals.
import type { InputInfo, ParamInfo } from './ir/program.ts';

export type StorageDType = 'f32' | 'f16' | 'bf16';

export interface KernelManifest {
  /** attnc version that wrote it. */
  attnc: string;
  target: 'wgsl' | 'cuda';
  /** Absent for the forward kernel; 'backward' for the kernels of dQ, dK, dV (WGSL: abi.stages). */
  pass?: 'backward';
  /** Name of the attention block. */
  spec: string;
  /** sha256 of the spec text, entry, and options: names cached artifacts. */
  hash: string;
  /** Entry point of the kernel in the source. */
  entryPoint: string;
  dtype: StorageDType;
  headDim: number;
  /** Query rows and keys per tile, threads per workgroup/block. */
  tile: { bm: number; bn: number; threads: number };
  params: ParamInfo[];
  inputs: InputInfo[];
  /** Human-readable launch grid, e.g. `[ceil(Nq / 64), Hq, B]`. */
  grid: string;
  /** Target-specific binding layout or argument order (documented by the backend). */
  abi: Record<string, unknown>;
  /** What the analyses found, for people and tools. */
  analysis: { affine: boolean; maskFree: boolean; tileTestReadsTables?: boolean; classes: Record<string, string> };
}

export interface CompiledKernel {
  source: string;
  manifest: KernelManifest;
}
