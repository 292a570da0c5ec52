// Helpers of the numerics tests: compile a spec for the adapter and run it on
// chosen inputs, with the float64 reference alongside.
import { frontEnd, lowerAndAnalyze, renderKernel } from '../../src/compiler/compile.ts';
import type { AttentionCall, AttentionResult, Backend } from '../../src/runtime/device.ts';
import { referenceAttention } from '../../src/runtime/reference.ts';
import { randomInputs } from '../../src/runtime/random.ts';
import { roundThrough } from '../../src/runtime/half.ts';

export const SHAPE = { B: 1, Hq: 2, Hkv: 1, Nq: 40, Nk: 70, D: 32 };

export interface Run { got: AttentionResult; want: { o: Float64Array; lse: Float64Array }; call: AttentionCall }

export async function runSpec(backend: Backend, text: string, opts: { dtype?: 'f32' | 'f16'; params?: Record<string, number>; edit?: (c: AttentionCall) => void; qScale?: number; shape?: typeof SHAPE } = {}): Promise<Run> {
  const fe = frontEnd('n.attn', text);
  if (!fe.ok) throw new Error(fe.diagnostics.map((d) => d.message).join('; '));
  const lowered = lowerAndAnalyze(fe.block);
  const shape = opts.shape ?? SHAPE;
  const dtype = opts.dtype ?? 'f32';
  let { q, k, v } = randomInputs(shape, 11);
  if (opts.qScale) q = q.map((x) => x * opts.qScale!);
  if (dtype === 'f16') [q, k, v] = [q, k, v].map((x) => roundThrough('f16', x));
  const params: Record<string, number> = {};
  for (const p of lowered.program.params) params[p.name] = opts.params?.[p.name] ?? p.default;
  const call: AttentionCall = { ...shape, q, k, v, params, tables: {} };
  opts.edit?.(call);
  const kernel = renderKernel(text, fe.block, lowered, { target: 'wgsl', dtype, headDim: shape.D, limits: backend.limits() });
  const got = await backend.run(kernel, call);
  return { got, want: referenceAttention(fe.block, call), call };
}

export const count = (xs: ArrayLike<number>, pred: (x: number) => boolean) => Array.prototype.filter.call(xs, pred).length;

/** Query rows (over all heads) whose O holds a NaN. */
export function nanRows(o: ArrayLike<number>, D: number): Set<number> {
  const rows = new Set<number>();
  for (let i = 0; i < o.length; i++) if (Number.isNaN(o[i])) rows.add(Math.floor(i / D));
  return rows;
}
