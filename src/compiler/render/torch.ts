// The torch target: one self-contained Python module that runs attnc's fused CUDA kernel from PyTorch.
//
//   from scale_invariant_bf16_d128 import attention
//   o, lse = attention(q, k, v, params={'tau': 10.0})
//
// The call is the flex module's (render/flex.ts), so a user can switch between the two: this one for speed
// (with gradients from attnc's backward kernels for f16/bf16 up to head_dim 128), FlexAttention's where those end. The module carries both CUDA sources the Node runtime would pick
// between (sm_90a for Hopper, sm_80 for the rest) with their launch tables, and the loader of
// render/torch-runtime.ts. The spec's names reach the module only as string literals (JSON).
import type { LoweredKernel } from '../ir/program.ts';
import type { CompiledKernel, StorageDType } from '../manifest.ts';
import { AXIS_SIZE } from '../syntax/ast.ts';
import { cudaLaunches, renderCuda, type CudaArg } from './cuda.ts';
import { cudaBackwardProblem, cudaBackwardStages, renderCudaBackward } from './cuda-bwd.ts';
import type { CudaBackwardTuning } from './cuda-bwd-tuning.ts';
import { TORCH_RUNTIME } from './torch-runtime.ts';

export interface TorchRenderOptions {
  dtype: StorageDType;
  headDim: number;
  hash: string;
  version: string;
  exactLse?: boolean;
  /** The backward kernels' variants under evaluation (none by default). */
  cudaBackward?: CudaBackwardTuning;
}

const TORCH_DTYPE: Record<StorageDType, string> = { f32: 'torch.float32', f16: 'torch.float16', bf16: 'torch.bfloat16' };

/** A string as a Python literal: raw and triple-quoted where it can be (CUDA sources stay readable), else JSON's form. */
function pyString(s: string): string {
  return !s.includes("'''") && !s.endsWith('\\') && !s.includes('\r') ? `r'''${s}'''` : JSON.stringify(s);
}

/** Data (numbers, strings, booleans, null, arrays, plain objects) as a Python literal. */
function pyData(x: unknown): string {
  if (x === null || x === undefined) return 'None';
  if (typeof x === 'boolean') return x ? 'True' : 'False';
  if (typeof x === 'number') {
    if (!Number.isFinite(x)) return x > 0 ? "float('inf')" : x < 0 ? "float('-inf')" : "float('nan')";
    return String(x);
  }
  if (typeof x === 'string') return JSON.stringify(x);
  if (Array.isArray(x)) return `[${x.map(pyData).join(', ')}]`;
  return `{${Object.entries(x as Record<string, unknown>).map(([k, v]) => `${JSON.stringify(k)}: ${pyData(v)}`).join(', ')}}`;
}

/** A param's default as Python writes it: f32 integers with a decimal point (10.0, not 10). */
const pyNumber = (v: number, type: 'i32' | 'f32') => (type === 'f32' && Number.isInteger(v) ? `${v}.0` : pyData(v));

/** The backward kernels' entry in the module: stages (entry, what a block owns, block, shared memory), arguments, f32 scratch, source. */
function backwardEntry(b: CompiledKernel): string {
  const stages = cudaBackwardStages(b.manifest).map((x) => ({ entry: x.entryPoint, over: x.over, bm: x.bm, block: [x.block[0], x.block[1] ?? 1, x.block[2] ?? 1], smem: x.dynamicSmemBytes, persistent: !!x.persistent }));
  const args = (b.manifest.abi as { args: CudaArg[] }).args.map((a) => (a.role === 'param' ? [a.role, a.name, a.kind] : [a.role, a.name]));
  const scratch = (b.manifest.abi as { scratch: Array<{ name: string; shape: string[] }> }).scratch.map((x) => [x.name, x.shape]);
  return `{
    'stages': ${pyData(stages)},
    'args': ${pyData(args)},
    'scratch': ${pyData(scratch)},
    'source': ${pyString(b.source)},
}`;
}

/** The backward entries keyed by arch (each indented into the dict). */
function backwardByArch(backward: CompiledKernel[]): string {
  const entries = backward.map((b) => `    ${JSON.stringify((b.manifest.abi as { arch: string }).arch)}: ${backwardEntry(b).split('\n').join('\n    ')},`);
  return `{\n${entries.join('\n')}\n}`;
}

/** The module's name (and file name without .py): spec, dtype, head dim, e.g. scale_invariant_bf16_d128. */
export function torchModuleName(spec: string, dtype: StorageDType, headDim: number): string {
  return `${spec}_${dtype}_d${headDim}`;
}

export function renderTorch(k: LoweredKernel, opts: TorchRenderOptions): string {
  const { dtype, headDim } = opts;
  const kernels = (['sm_90a', 'sm_80'] as const).map((arch) => renderCuda(k, { dtype, headDim, hash: opts.hash, version: opts.version, arch, exactLse: opts.exactLse }));
  // The backward kernels where there are any (f16/bf16, head_dim <= 128), per arch as the forward's: the sm_90a ones
  // (wgmma by default) and the sm_80 ones (mma.sync, for every other arch).
  const backward = cudaBackwardProblem(dtype, headDim) ? null : (['sm_90a', 'sm_80'] as const).map((arch) => renderCudaBackward(k, { dtype, headDim, hash: opts.hash, version: opts.version, arch, tuning: opts.cudaBackward }));
  return torchModule(kernels, opts.hash, opts.version, backward);
}

/**
 * The module around compiled CUDA kernels of one spec, dtype and head dim: the sm_90a one and the sm_80 one (a
 * loader on Hopper picks the first, elsewhere the second; the torch backend passes the one its GPU runs). Params,
 * tables and names come from the manifests.
 */
export function torchModule(compiled: CompiledKernel[], hash: string, version: string, backward: CompiledKernel[] | null = null): string {
  const m0 = compiled[0].manifest;
  const { dtype, headDim } = m0;
  const program = { name: m0.spec, params: m0.params, inputs: m0.inputs };
  const kernels = compiled.map(({ source, manifest }) => {
    const abi = manifest.abi as { arch: 'sm_80' | 'sm_90a'; kernel?: string; args: CudaArg[]; variants?: Array<{ entryPoint: string; maxNk?: number; minNq?: number }> };
    const variants = abi.variants ?? [];
    const launches = cudaLaunches(manifest).map((l) => {
      const variant = variants.find((v) => v.entryPoint === l.entryPoint);
      return {
        entry: l.entryPoint, maxNk: variant?.maxNk ?? null, minNq: variant?.minNq ?? null, bm: l.bm,
        block: [l.block[0], l.block[1] ?? 1, l.block[2] ?? 1], smem: l.dynamicSmemBytes, blocksPerSm: l.blocksPerSm, persistent: l.persistent,
      };
    });
    const args = abi.args.map((a) => (a.role === 'param' ? [a.role, a.name, a.kind] : [a.role, a.name]));
    return { arch: abi.arch, source, launches, args, kernel: abi.kernel ?? '' };
  });
  const kernelEntry = (x: (typeof kernels)[number]) => `    ${JSON.stringify(x.arch)}: {
        'kernel': ${JSON.stringify(x.kernel)},
        'launches': ${pyData(x.launches)},
        'args': ${pyData(x.args)},
        'source': ${pyString(x.source)},
    },`;
  const name = torchModuleName(program.name, dtype, headDim);
  // Names only as string literals, in the docstring too.
  const params = program.params.map((p) => ({ name: JSON.stringify(p.name), type: p.type, value: pyNumber(p.default, p.type) }));
  const tables = program.inputs.map((t) => ({ ...t, name: JSON.stringify(t.name) }));
  const paramDoc = params.map((p) => `${p.name} = ${p.value}`).join(', ');
  const tableDoc = tables.map((t) => `${t.name}: ${t.elem}[${t.axis}]`).join(', ');
  const example = `attention(q, k, v${params.length ? `, params={${params.map((p) => `${p.name}: ${p.value}`).join(', ')}}` : ''}${tables.length ? `, tables={${tables.map((t) => `${t.name}: ...`).join(', ')}}` : ''})`;
  return `# attnc ${version}: attention '${program.name}' as a fused CUDA kernel for PyTorch (spec hash ${hash}).
# Generated by \`attnc compile --target torch\`; do not edit.
"""${program.name}: attnc's fused flash-attention kernel (${dtype}, head_dim ${headDim}) for PyTorch, ${backward ? 'with its backward kernels (autograd: dQ, dK, dV)' : 'forward only'}.

    from ${name} import attention
    o, lse = ${example}

q [B, Hq, Nq, ${headDim}], k and v [B, Hkv, Nk, ${headDim}] (${dtype}, one CUDA device); o like q, lse [B, Hq, Nq] float32.
Params: ${paramDoc || 'none'}. Tables: ${tableDoc || 'none'}.
The first call compiles the kernel with NVRTC for the GPU (cached on disk) and loads it. The call is the one of the
spec's FlexAttention module (attnc compile --target flex)${backward ? '' : ', which gives gradients'}.
"""
import ctypes
import glob
import hashlib
import os
import threading

import torch

SPEC = ${JSON.stringify(program.name)}
DTYPE = ${TORCH_DTYPE[dtype]}
HEAD_DIM = ${headDim}
# The custom operator's name (torch.ops.attnc.<OP_NAME>): spec, dtype, head dim and the artifact's hash.
OP_NAME = ${JSON.stringify(`${name}_${hash.replace(/[^A-Za-z0-9_]/g, '_')}`)}
# name: (type, default)
PARAMS = {${params.map((p) => `${p.name}: (${JSON.stringify(p.type)}, ${p.value})`).join(', ')}}
# name: (element type, axis, the size its length must equal)
INPUTS = {${tables.map((t) => `${t.name}: (${JSON.stringify(t.elem)}, ${JSON.stringify(t.axis)}, ${JSON.stringify(AXIS_SIZE[t.axis])})`).join(', ')}}
# Per arch: the kernel kind, its launches (the main kernel first; a variant serves calls with Nk <= maxNk and Nq >= minNq, where given),
# its arguments in order (role, name[, type]) and its CUDA-C source.
KERNELS = {
${kernels.map(kernelEntry).join('\n')}
}
# The backward kernels per arch (a loader on Hopper takes sm_90a's, elsewhere sm_80's), launched in order by
# o.backward(...): their entry points, what a block owns (bm query rows or keys), blocks and shared memory, arguments,
# f32 scratch and CUDA-C source; None where there are none.
BACKWARD = ${backward ? backwardByArch(backward) : 'None'}
${TORCH_RUNTIME}`;
}
