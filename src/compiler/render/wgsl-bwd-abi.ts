// The binding table of the WGSL backward kernels (wgsl-bwd.ts): what the
// runtime and embedders read from `manifest.abi`, and the WGSL declarations
// that match it. Two stages, dispatched in order on one command encoder:
//
//   attend_bwd_dq    per (query tile, query head, batch): delta = rowsum(dO * O)
//                    (written for the next stage) and dQ
//   attend_bwd_dkdv  per (key tile, kv head, batch): dK and dV, summed over
//                    the query heads that read the kv head (GQA)
//
// Each stage binds only what it reads or writes (its own bind group layout):
// 7 storage buffers plus one per table, so a device with WebGPU's guaranteed
// 8 per shader stage runs specs with up to one table (the runtime names the
// limit for the others). That is why the LSE and delta share one buffer,
// `stats`: the caller's LSE is copied into its first half before the stages.
import type { InputInfo, ParamInfo } from '../ir/program.ts';
import { mangle } from './names.ts';
import { uniformDeclaration, uniformFields, type UniformField, type WgslBinding } from './wgsl-abi.ts';

export const BWD_DQ_ENTRY = 'attend_bwd_dq';
export const BWD_DKDV_ENTRY = 'attend_bwd_dkdv';

export interface WgslBackwardStage {
  entryPoint: string;
  /** The bindings of this stage's bind group layout (group 0). */
  bindings: number[];
  /** Workgroups to dispatch. */
  dispatch: { x: string; y: string; z: string };
  what: string;
}

export interface WgslBackwardAbi {
  pass: 'backward';
  /** How Q, K, V, O, dO and the gradients are stored (as the forward ABI). */
  storage: 'f32' | 'f16-packed-u32';
  group: 0;
  bindings: WgslBinding[];
  uniform: { binding: 0; size: number; fields: UniformField[] };
  /**
   * Run in this order, after copying the forward call's LSE ([B, Hq, Nq] f32) into the first half of the
   * `stats` binding; the second stage reads the delta the first wrote into its second half.
   */
  stages: WgslBackwardStage[];
  /** Rows (query rows, or keys) per workgroup. */
  bm: number;
}

export function buildBackwardAbi(dtype: 'f32' | 'f16', params: ParamInfo[], inputs: InputInfo[], bm: number): WgslBackwardAbi {
  const read = 'read' as const, write = 'read_write' as const;
  const bindings: WgslBinding[] = [
    { binding: 0, role: 'uniform', variable: 'u', what: 'sizes and params (struct Uniforms)' },
    { binding: 1, role: 'q', variable: 'q_in', what: 'Q [B, Hq, Nq, D]', access: read },
    { binding: 2, role: 'k', variable: 'k_in', what: 'K [B, Hkv, Nk, D]', access: read },
    { binding: 3, role: 'v', variable: 'v_in', what: 'V [B, Hkv, Nk, D]', access: read },
    { binding: 4, role: 'o', variable: 'o_in', what: 'O [B, Hq, Nq, D] of the forward kernel', access: read },
    { binding: 5, role: 'stats', variable: 'stats', what: 'stats [2, B, Hq, Nq] f32: the forward kernel\'s LSE (natural log; copied in before the first stage), then delta = rowsum(dO * O) (written by the first stage)', access: write },
    { binding: 6, role: 'do', variable: 'do_in', what: 'dO [B, Hq, Nq, D], the gradient of O', access: read },
    { binding: 7, role: 'dq', variable: 'dq_out', what: 'dQ [B, Hq, Nq, D] (written)', access: write },
    { binding: 8, role: 'dk', variable: 'dk_out', what: 'dK [B, Hkv, Nk, D] (written)', access: write },
    { binding: 9, role: 'dv', variable: 'dv_out', what: 'dV [B, Hkv, Nk, D] (written)', access: write },
  ];
  inputs.forEach((t, i) => bindings.push({
    binding: 10 + i, role: 'table', variable: mangle('t', t.name), name: t.name, elem: t.elem, axis: t.axis,
    what: `table ${JSON.stringify(t.name)}: ${t.elem}[${t.axis}]`, access: read,
  }));
  const tables = inputs.map((_, i) => 10 + i);
  return {
    pass: 'backward',
    storage: dtype === 'f32' ? 'f32' : 'f16-packed-u32',
    group: 0,
    bindings,
    uniform: { binding: 0, ...uniformFields(params) },
    stages: [
      { entryPoint: BWD_DQ_ENTRY, bindings: [0, 1, 2, 3, 4, 5, 6, 7, ...tables], dispatch: { x: `ceil(Nq / ${bm})`, y: 'Hq', z: 'B' }, what: 'delta and dQ' },
      { entryPoint: BWD_DKDV_ENTRY, bindings: [0, 1, 2, 3, 5, 6, 8, 9, ...tables], dispatch: { x: `ceil(Nk / ${bm})`, y: 'Hkv', z: 'B' }, what: 'dK and dV' },
    ],
    bm,
  };
}

/** The module-scope declarations matching the ABI. */
export function backwardDeclarations(abi: WgslBackwardAbi): string[] {
  const io = abi.storage === 'f32' ? 'array<vec4<f32>>' : 'array<vec2<u32>>';
  const lines = uniformDeclaration(abi.uniform.fields);
  for (const b of abi.bindings) {
    const at = `@group(0) @binding(${b.binding})`;
    const mode = b.access === 'read_write' ? 'read_write' : 'read';
    switch (b.role) {
      case 'uniform': lines.push(`${at} var<uniform> u: Uniforms;`); break;
      case 'stats': lines.push(`${at} var<storage, ${mode}> ${b.variable}: array<f32>; // ${b.what}`); break;
      case 'table': lines.push(`${at} var<storage, read> ${b.variable}: array<${b.elem}>; // ${b.what}`); break;
      default: lines.push(`${at} var<storage, ${mode}> ${b.variable}: ${io}; // ${b.what}`);
    }
  }
  return lines;
}

/** Helpers that read/write one vec4 of the tensors in the storage dtype. */
export function backwardIoHelpers(abi: WgslBackwardAbi): string[] {
  const reads = ['q', 'k', 'v', 'o', 'do'], writes = ['dq', 'dk', 'dv'];
  if (abi.storage === 'f32') {
    return [
      ...reads.map((t) => `fn load_${t}(i: u32) -> vec4<f32> { return ${t}_in[i]; }`),
      ...writes.map((t) => `fn store_${t}(i: u32, x: vec4<f32>) { ${t}_out[i] = x; }`),
    ];
  }
  return [
    '// f16 storage: four halves packed in two u32 (no shader-f16 feature needed).',
    'fn unpack4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }',
    'fn pack4(x: vec4<f32>) -> vec2<u32> { return vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw)); }',
    ...reads.map((t) => `fn load_${t}(i: u32) -> vec4<f32> { return unpack4(${t}_in[i]); }`),
    ...writes.map((t) => `fn store_${t}(i: u32, x: vec4<f32>) { ${t}_out[i] = pack4(x); }`),
  ];
}
