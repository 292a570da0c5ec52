// The binding table and uniform layout of a WGSL attention kernel: what the
// runtime (runtime/webgpu.ts) and embedders read from `manifest.abi`, and the
// WGSL declarations that match it. One source of truth for both.
import type { InputInfo, ParamInfo } from '../ir/program.ts';
import { AXIS_SIZE, type TableAxis } from '../syntax/ast.ts';
import { mangle } from './names.ts';

export type BindingRole = 'uniform' | 'q' | 'k' | 'v' | 'o' | 'lse' | 'table'
  // the backward kernels' (wgsl-bwd-abi.ts)
  | 'do' | 'stats' | 'dq' | 'dk' | 'dv';

export interface WgslBinding {
  binding: number;
  role: BindingRole;
  /** WGSL variable name. */
  variable: string;
  /** For tables: the user's name, element type, axis. */
  name?: string;
  elem?: 'i32' | 'f32';
  axis?: TableAxis;
  what: string;
  /** Set by the backward ABI, where O and LSE are read; otherwise the role decides (bufferBindingType). */
  access?: 'read' | 'read_write';
}

export interface UniformField {
  /** WGSL member name. */
  member: string;
  offset: number;
  type: 'i32' | 'f32';
  /** A size of the call (`B`, `Hq`, ...) or a param of the spec (by the user's name). */
  source: { size: 'B' | 'Hq' | 'Hkv' | 'Nq' | 'Nk' | 'D' } | { param: string };
}

export interface WgslAbi {
  /** How Q, K, V and O are stored: f32 as array<vec4<f32>>, f16 as pairs packed in u32 (array<vec2<u32>>). */
  storage: 'f32' | 'f16-packed-u32';
  group: 0;
  bindings: WgslBinding[];
  uniform: { binding: 0; size: number; fields: UniformField[] };
  /** Workgroups to dispatch: x = ceil(Nq / bm), y = Hq, z = B. */
  dispatch: { x: string; y: string; z: string; bm: number };
}

const SIZES = ['B', 'Hq', 'Hkv', 'Nq', 'Nk', 'D'] as const;

export function buildAbi(dtype: 'f32' | 'f16', params: ParamInfo[], inputs: InputInfo[], bm: number): WgslAbi {
  const { size, fields } = uniformFields(params);
  const bindings: WgslBinding[] = [
    { binding: 0, role: 'uniform', variable: 'u', what: 'sizes and params (struct Uniforms)' },
    { binding: 1, role: 'q', variable: 'q_in', what: 'Q [B, Hq, Nq, D]' },
    { binding: 2, role: 'k', variable: 'k_in', what: 'K [B, Hkv, Nk, D]' },
    { binding: 3, role: 'v', variable: 'v_in', what: 'V [B, Hkv, Nk, D]' },
    { binding: 4, role: 'o', variable: 'o_out', what: 'O [B, Hq, Nq, D] (written)' },
    { binding: 5, role: 'lse', variable: 'lse_out', what: 'LSE [B, Hq, Nq] f32, natural log (written)' },
  ];
  inputs.forEach((t, i) => bindings.push({
    binding: 6 + i, role: 'table', variable: mangle('t', t.name), name: t.name, elem: t.elem, axis: t.axis,
    what: `table ${JSON.stringify(t.name)}: ${t.elem}[${t.axis}]`,
  }));
  return {
    storage: dtype === 'f32' ? 'f32' : 'f16-packed-u32',
    group: 0,
    bindings,
    uniform: { binding: 0, size, fields },
    dispatch: { x: `ceil(Nq / ${bm})`, y: 'Hq', z: 'B', bm },
  };
}

/** WGSL expression for the length of a table on `axis` (reads are clamped to it). */
export function axisLengthExpr(axis: TableAxis): string {
  return `u.${AXIS_SIZE[axis]}`;
}

/** The buffer binding type of each role: the runtime's explicit layout and the ts module's use it. */
export function bufferBindingType(role: BindingRole): 'uniform' | 'storage' | 'read-only-storage' {
  return role === 'uniform' ? 'uniform' : role === 'o' || role === 'lse' ? 'storage' : 'read-only-storage';
}

/** The buffer binding type of a binding: its access where the ABI gives one, else its role's. */
export function bindingType(b: WgslBinding): 'uniform' | 'storage' | 'read-only-storage' {
  if (b.access) return b.access === 'read' ? 'read-only-storage' : 'storage';
  return bufferBindingType(b.role);
}

/** The uniform struct's WGSL declaration. */
export function uniformDeclaration(fields: UniformField[]): string[] {
  const lines = ['struct Uniforms {'];
  for (const f of fields) {
    const from = 'size' in f.source ? 'size' : `param ${JSON.stringify(f.source.param)}`;
    lines.push(`  ${f.member}: ${f.type}, // offset ${f.offset}: ${from}`);
  }
  lines.push('}', '');
  return lines;
}

/** The uniform fields: the call's sizes, then the spec's params. */
export function uniformFields(params: ParamInfo[]): { size: number; fields: UniformField[] } {
  const fields: UniformField[] = [];
  SIZES.forEach((size, i) => fields.push({ member: size, offset: 4 * i, type: 'i32', source: { size } }));
  params.forEach((p, i) => fields.push({ member: mangle('p', p.name), offset: 4 * (SIZES.length + i), type: p.type, source: { param: p.name } }));
  return { size: Math.ceil((4 * fields.length) / 16) * 16, fields };
}

/** The module-scope declarations matching the ABI. */
export function abiDeclarations(abi: WgslAbi): string[] {
  const io = abi.storage === 'f32' ? 'array<vec4<f32>>' : 'array<vec2<u32>>';
  const lines = uniformDeclaration(abi.uniform.fields);
  for (const b of abi.bindings) {
    const at = `@group(0) @binding(${b.binding})`;
    switch (b.role) {
      case 'uniform': lines.push(`${at} var<uniform> u: Uniforms;`); break;
      case 'q': case 'k': case 'v': lines.push(`${at} var<storage, read> ${b.variable}: ${io};`); break;
      case 'o': lines.push(`${at} var<storage, read_write> ${b.variable}: ${io};`); break;
      case 'lse': lines.push(`${at} var<storage, read_write> ${b.variable}: array<f32>;`); break;
      case 'table': lines.push(`${at} var<storage, read> ${b.variable}: array<${b.elem}>; // ${b.what}`); break;
      default: throw new Error(`internal error: the forward ABI has no ${b.role} binding`);
    }
  }
  return lines;
}

/** Helpers that read/write one vec4 of Q/K/V/O in the storage dtype. */
export function ioHelpers(abi: WgslAbi): string[] {
  if (abi.storage === 'f32') {
    return [
      'fn load_q(i: u32) -> vec4<f32> { return q_in[i]; }',
      'fn load_k(i: u32) -> vec4<f32> { return k_in[i]; }',
      'fn load_v(i: u32) -> vec4<f32> { return v_in[i]; }',
      'fn store_o(i: u32, x: vec4<f32>) { o_out[i] = x; }',
    ];
  }
  return [
    '// f16 storage: four halves packed in two u32 (no shader-f16 feature needed).',
    'fn unpack4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }',
    'fn load_q(i: u32) -> vec4<f32> { return unpack4(q_in[i]); }',
    'fn load_k(i: u32) -> vec4<f32> { return unpack4(k_in[i]); }',
    'fn load_v(i: u32) -> vec4<f32> { return unpack4(v_in[i]); }',
    'fn store_o(i: u32, x: vec4<f32>) { o_out[i] = vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw)); }',
  ];
}
