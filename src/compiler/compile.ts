// The compiler as a straight list of stages. Each stage is a plain function
// from one value to the next; `--dump STAGE` prints the value after any of
// them (see src/cli/compile.ts).
//
//   text ─► parse ─► check ─► select entry ─► lower (IR) ─► analyze
//        ─► render (wgsl | cuda | flex) ─► source + manifest
import { createHash } from 'node:crypto';
import type { AttentionBlock, SpecFile } from './syntax/ast.ts';
import type { Diagnostic } from './diagnostics/diagnostic.ts';
import type { LoweredKernel } from './ir/program.ts';
import type { CompiledKernel, StorageDType } from './manifest.ts';
import type { DeviceLimits } from '../runtime/device.ts';
import { parseSpec } from './syntax/parse.ts';
import { checkSpec, selectBlock } from './check/check.ts';
import { lowerBlock } from './passes/lower.ts';
import { analyzeProgram } from './passes/analyze.ts';
import { renderWgsl } from './render/wgsl.ts';
import { renderWgslBackward } from './render/wgsl-bwd.ts';
import { cudaBackwardProblem, renderCudaBackward } from './render/cuda-bwd.ts';
import { backwardTuningLabel, type CudaBackwardTuning } from './render/cuda-bwd-tuning.ts';
import { renderCuda } from './render/cuda.ts';
import { VERSION } from '../version.ts';

export type Target = 'wgsl' | 'cuda';

export interface CompileOptions {
  target: Target;
  dtype: StorageDType;
  headDim: number;
  entry?: string;
  /** WGSL: tile sizes come from the device's limits. */
  limits?: DeviceLimits;
  /** CUDA: the architecture the code is meant for. */
  arch?: 'sm_80' | 'sm_90a';
  /**
   * CUDA: row sums in f32 in the softmax everywhere, for an LSE within ~1e-6 of float64; by default the
   * Hopper kernel may take them on the tensor cores from the rounded P (faster, LSE within ~1e-3; docs/NUMERICS.md).
   */
  exactLse?: boolean;
  /** 'backward': the kernels of dQ, dK and dV (WGSL; CUDA for f16/bf16) instead of the forward kernel. */
  pass?: 'forward' | 'backward';
  /** CUDA backward: variants under evaluation (render/cuda-bwd.ts; none by default). */
  cudaBackward?: CudaBackwardTuning;
}

export type FrontEnd =
  | { ok: true; file: SpecFile; block: AttentionBlock }
  | { ok: false; diagnostics: Diagnostic[] };

/** Parse, check, and pick the entry block. All errors of the run are reported together. */
export function frontEnd(path: string, text: string, entry?: string): FrontEnd {
  const { file, diagnostics } = parseSpec(path, text);
  // The checker runs on the recovered AST too (it stays silent about what
  // recovery made up), so syntax and type errors are reported together.
  const all = [...diagnostics, ...checkSpec(file)];
  if (all.some((d) => d.severity === 'error')) return { ok: false, diagnostics: all };
  const picked = selectBlock(file, entry);
  if ('diagnostic' in picked) return { ok: false, diagnostics: [picked.diagnostic] };
  return { ok: true, file, block: picked.block };
}

/** IR and analyses of a checked block. */
export function lowerAndAnalyze(block: AttentionBlock): LoweredKernel {
  const program = lowerBlock(block);
  return { program, analysis: analyzeProgram(program) };
}

/** Names a compiled artifact: the spec text, the entry, and every option that changes the code. */
/** Options that change an artifact; the flex module depends on none but the target (the torch module carries both archs). */
export type HashOptions = Partial<Omit<CompileOptions, 'target' | 'entry'>> & { target: Target | 'flex' | 'torch' };

export function artifactHash(text: string, blockName: string, opts: HashOptions): string {
  const limits = opts.limits
    ? [opts.limits.maxWorkgroupStorageBytes, opts.limits.maxInvocationsPerWorkgroup, opts.limits.maxWorkgroupSizeX]
    : [];
  const key = JSON.stringify([VERSION, text, blockName, opts.target, opts.dtype ?? '', opts.headDim ?? 0, opts.arch ?? '', limits, ...(opts.exactLse ? ['exact-lse'] : []), ...(opts.pass === 'backward' ? ['backward'] : []), ...(opts.cudaBackward ? [`bwd:${backwardTuningLabel(opts.cudaBackward)}`] : [])]);
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Renders one kernel for a checked block. */
export function renderKernel(text: string, block: AttentionBlock, lowered: LoweredKernel, opts: CompileOptions): CompiledKernel {
  const hash = artifactHash(text, block.name, opts);
  switch (opts.target) {
    case 'wgsl': {
      if (opts.dtype === 'bf16') throw new UsageError('WGSL kernels take --dtype f32 or f16 (bf16 is CUDA only)');
      if (!opts.limits) throw new Error('internal error: WGSL rendering needs device limits');
      if (opts.pass === 'backward') return renderWgslBackward(lowered, { dtype: opts.dtype, headDim: opts.headDim, limits: opts.limits, hash, version: VERSION });
      return renderWgsl(lowered, { dtype: opts.dtype, headDim: opts.headDim, limits: opts.limits, hash, version: VERSION });
    }
    case 'cuda':
      if (opts.pass === 'backward') {
        const problem = cudaBackwardProblem(opts.dtype, opts.headDim);
        if (problem) throw new UsageError(problem);
        return renderCudaBackward(lowered, { dtype: opts.dtype, headDim: opts.headDim, hash, version: VERSION, arch: opts.arch, tuning: opts.cudaBackward });
      }
      return renderCuda(lowered, { dtype: opts.dtype, headDim: opts.headDim, hash, version: VERSION, arch: opts.arch, exactLse: opts.exactLse });
  }
}

/** The whole pipeline: text to kernel, or diagnostics. */
export function compileSpec(path: string, text: string, opts: CompileOptions): { kernel: CompiledKernel; lowered: LoweredKernel } | { diagnostics: Diagnostic[] } {
  const fe = frontEnd(path, text, opts.entry);
  if (!fe.ok) return { diagnostics: fe.diagnostics };
  const lowered = lowerAndAnalyze(fe.block);
  return { kernel: renderKernel(text, fe.block, lowered, opts), lowered };
}

/** A mistake in how the compiler was asked (not in the spec): one line, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
