// Runs a checked spec on a backend or on the float64 reference, with params
// and tables validated against the spec's declarations first.
import type { AttentionBlock } from '../compiler/syntax/ast.ts';
import type { LoweredKernel } from '../compiler/ir/program.ts';
import type { StorageDType } from '../compiler/manifest.ts';
import { renderKernel, UsageError } from '../compiler/compile.ts';
import { referenceAttention } from './reference.ts';
import type { AttentionCall, AttentionResult, Backend } from './device.ts';
import { nameRecord, own } from '../compiler/own.ts';
import { AXIS_SIZE } from '../compiler/syntax/ast.ts';


/** Fills in param defaults and checks that every param and table the call names exists and fits. */
export function completeCall(lowered: LoweredKernel, call: Omit<AttentionCall, 'params'> & { params: Record<string, number> }): AttentionCall {
  const { program } = lowered;
  const known = new Set(program.params.map((p) => p.name));
  for (const name of Object.keys(call.params)) {
    if (!known.has(name)) throw new UsageError(`spec '${program.name}' has no param '${name}' (params: ${[...known].join(', ') || 'none'})`);
  }
  const params = nameRecord<number>();
  for (const p of program.params) {
    const v = own(call.params, p.name) ?? p.default;
    if (p.type === 'i32' && (!Number.isInteger(v) || v < -2147483648 || v > 2147483647)) {
      throw new UsageError(`param '${p.name}' is i32: ${v} is not a 32-bit integer`);
    }
    params[p.name] = v;
  }
  const tableNames = new Set(program.inputs.map((i) => i.name));
  for (const name of Object.keys(call.tables)) {
    if (!tableNames.has(name)) throw new UsageError(`spec '${program.name}' has no input '${name}' (inputs: ${[...tableNames].join(', ') || 'none'})`);
  }
  for (const input of program.inputs) {
    const table = own(call.tables, input.name);
    if (!table) throw new UsageError(`input '${input.name}' (${input.elem}[${input.axis}]) is missing: pass --input ${input.name}=FILE.npy`);
    const want = call[AXIS_SIZE[input.axis]];
    if (table.length !== want) throw new UsageError(`input '${input.name}' is ${input.elem}[${input.axis}] so it needs ${want} values, got ${table.length}`);
    if (input.elem === 'i32' && !(table instanceof Int32Array)) throw new UsageError(`input '${input.name}' must be int32`);
    if (input.elem === 'f32' && !(table instanceof Float32Array)) throw new UsageError(`input '${input.name}' must be float32`);
  }
  checkShape(call);
  return { ...call, params };
}

function checkShape(c: Omit<AttentionCall, 'params'>): void {
  if (c.Hq % c.Hkv !== 0) throw new UsageError(`query heads (${c.Hq}) must be a multiple of key/value heads (${c.Hkv})`);
  if (c.q.length !== c.B * c.Hq * c.Nq * c.D) throw new UsageError('Q does not hold B*Hq*Nq*D values');
  if (c.k.length !== c.B * c.Hkv * c.Nk * c.D || c.v.length !== c.k.length) throw new UsageError('K and V must both hold B*Hkv*Nk*D values');
}

/** Compiles for the backend and runs. */
export async function runKernel(backend: Backend, text: string, block: AttentionBlock, lowered: LoweredKernel, call: AttentionCall, dtype: StorageDType): Promise<AttentionResult> {
  const kernel = renderKernel(text, block, lowered, { ...backend.codegen(), dtype, headDim: call.D, limits: backend.limits() });
  return backend.run(kernel, call);
}

/** The float64 reference, as float32 results like a backend's (rows: only these query rows). */
export function runReference(block: AttentionBlock, call: AttentionCall, rows?: number[]): { o: Float64Array; lse: Float64Array } {
  return referenceAttention(block, call, rows ? { rows } : undefined);
}
