// Helpers of the WebGPU differential tests: compile an example for WGSL,
// run it on the adapter, and compare with the float64 reference.
import { readFileSync } from 'node:fs';
import { parseSpec } from '../../src/compiler/syntax/parse.ts';
import { lowerBlock } from '../../src/compiler/passes/lower.ts';
import { analyzeProgram } from '../../src/compiler/passes/analyze.ts';
import { renderWgsl } from '../../src/compiler/render/wgsl.ts';
import { renderWgslBackward } from '../../src/compiler/render/wgsl-bwd.ts';
import type { AttentionBlock } from '../../src/compiler/syntax/ast.ts';
import type { LoweredKernel } from '../../src/compiler/ir/program.ts';
import type { CompiledKernel } from '../../src/compiler/manifest.ts';
import type { Backend, DeviceLimits } from '../../src/runtime/device.ts';
import { openWebGpu } from '../../src/runtime/webgpu.ts';
import { referenceAttention } from '../../src/runtime/reference.ts';
import { compareOutputs, type Comparison } from '../../src/runtime/compare.ts';
import { defaultTables, randomInputs } from '../../src/runtime/random.ts';
import { roundThrough } from '../../src/runtime/half.ts';

export interface Example { name: string; text: string; block: AttentionBlock; lowered: LoweredKernel }

export function loadExample(path: string): Example {
  return loadSpecText(path, readFileSync(path, 'utf8'));
}

export function loadSpecText(path: string, text: string): Example {
  const { file, diagnostics } = parseSpec(path, text);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(`${path}: ${errors.map((d) => d.message).join('; ')}`);
  const block = file.blocks[0];
  const program = lowerBlock(block);
  return { name: block.name, text, block, lowered: { program, analysis: analyzeProgram(program) } };
}

/** Small values for the examples' params, so that windows, prefixes etc. bite at test lengths. */
export const TEST_PARAMS: Record<string, number> = { window: 40, sinks: 3, prefix: 50, train_len: 64, cap: 5 };

/** Lavapipe's limits: fixed so that golden files do not depend on the machine. */
export const GOLDEN_LIMITS: DeviceLimits = {
  maxWorkgroupStorageBytes: 32768,
  maxInvocationsPerWorkgroup: 256,
  maxWorkgroupSizeX: 256,
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxComputeWorkgroupsPerDimension: 65535,
};

export function compileWgsl(ex: Example, dtype: 'f32' | 'f16', headDim: number, limits: DeviceLimits): CompiledKernel {
  return renderWgsl(ex.lowered, { dtype, headDim, limits, hash: `test-${ex.name}-${dtype}-${headDim}`, version: 'test' });
}

export function compileWgslBackward(ex: Example, dtype: 'f32' | 'f16', headDim: number, limits: DeviceLimits): CompiledKernel {
  return renderWgslBackward(ex.lowered, { dtype, headDim, limits, hash: `test-bwd-${ex.name}-${dtype}-${headDim}`, version: 'test' });
}

export interface Case { B: number; Hq: number; Hkv: number; Nq: number; Nk: number; D: number; dtype: 'f32' | 'f16'; params?: Record<string, number> }

/** Runs one case on the backend and on the reference (with inputs rounded to the storage dtype first). */
export async function diffCase(backend: Backend, ex: Example, c: Case, seed = 1): Promise<DiffResult> {
  const shape = { B: c.B, Hq: c.Hq, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk, D: c.D };
  let { q, k, v } = randomInputs(shape, seed);
  if (c.dtype === 'f16') [q, k, v] = [q, k, v].map((x) => roundThrough('f16', x));
  const tables = defaultTables(ex.lowered.program.inputs, shape, seed);
  const params: Record<string, number> = {};
  for (const p of ex.lowered.program.params) params[p.name] = c.params?.[p.name] ?? TEST_PARAMS[p.name] ?? p.default;
  const kernel = compileWgsl(ex, c.dtype, c.D, backend.limits());
  const got = await backend.run(kernel, { ...shape, q, k, v, params, tables });
  const want = referenceAttention(ex.block, { ...shape, q, k, v, params, tables });
  return { ...compareOutputs(got, want, shape), got, want };
}

export type DiffResult = Comparison & { got: { o: Float32Array; lse: Float32Array }; want: { o: Float64Array; lse: Float64Array } };

/** The WebGPU backend of a test file, or null and a warning naming the file and why its GPU tests skip. */
export async function openTestBackend(file: string): Promise<Backend | null> {
  try {
    return await openWebGpu();
  } catch (e) {
    console.warn(`${file} skipped: no WebGPU adapter (${(e as Error).message})`);
    return null;
  }
}
