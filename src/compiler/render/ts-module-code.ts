// The statements of the `ts` target's generated methods and helpers (render/ts-module.ts
// assembles the module). Each function returns the body's lines; `${...}` in
// single quotes are the generated code's own template literals.
import { readFileSync } from 'node:fs';
import type { KernelManifest } from '../manifest.ts';
import { AXIS_SIZE } from '../syntax/ast.ts';
import { bindingType, type WgslAbi, type WgslBinding } from './wgsl-abi.ts';

export interface ModuleContext {
  m: KernelManifest;
  abi: WgslAbi;
  tables: WgslBinding[];
  D: number;
  half: boolean;
  bytesPerElem: number;
  cls: string;
  tablesType: string;
  tableBuffersType: string;
  /** The spec's name as a string literal. */
  label: string;
}

/** A user's name as a string literal: the only form in which names reach the module. */
export const key = (name: string) => JSON.stringify(name);
const numberText = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
/** Storage buffers of a call: Q, K, V, O, LSE and the tables (WebGPU's default limit is 8 per stage). */
const storageBuffers = (c: ModuleContext) => 5 + c.tables.length;

export function createStatements(c: ModuleContext): string[] {
  const { m, abi, tables, cls, label } = c;
  const layoutEntries = abi.bindings.map((b) => `{ binding: ${b.binding}, visibility: SHADER_STAGE_COMPUTE, buffer: { type: ${key(bindingType(b))} } }`);
  return [
    ...(storageBuffers(c) > 8
      ? [`if (device.limits.maxStorageBuffersPerShaderStage < ${storageBuffers(c)}) throw new Error(\`attention ${m.spec}: the kernel binds ${storageBuffers(c)} storage buffers (Q, K, V, O, LSE and ${tables.length} tables) and this device allows \${device.limits.maxStorageBuffersPerShaderStage} per shader stage: request requiredLimits: { maxStorageBuffersPerShaderStage: ${storageBuffers(c)} } (up to the adapter's limit) when creating the device\`);`]
      : []),
    `const module = device.createShaderModule({ label: ${label}, code: WGSL });`,
    'const errors = (await module.getCompilationInfo()).messages.filter((msg) => msg.type === \'error\');',
    `if (errors.length) throw new Error(\`attention ${m.spec}: WGSL compilation failed: \${errors.map((e) => \`\${e.lineNum}:\${e.linePos} \${e.message}\`).join('; ')}\`);`,
    '// An explicit layout: \'auto\' would drop a table the shader never reads.',
    `const layout = device.createBindGroupLayout({ label: ${label}, entries: [\n  ${layoutEntries.join(',\n  ')},\n] });`,
    'device.pushErrorScope(\'validation\');',
    `const pipeline = device.createComputePipeline({ label: ${label}, layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: ${key(m.entryPoint)} } });`,
    'const error = await device.popErrorScope();',
    `if (error) throw new Error(\`attention ${m.spec}: the device refused the pipeline (it needs ${m.tile.threads} invocations per workgroup and the workgroup memory of ${m.tile.bm}x${m.tile.bn} tiles): \${error.message}\`);`,
    `return new ${cls}(device, pipeline, layout);`,
  ];
}

export function bindStatements(c: ModuleContext): string[] {
  const { m, abi, D, label } = c;
  const byRole: Record<string, string> = { uniform: 'uniforms', q: 'buffers.q', k: 'buffers.k', v: 'buffers.v', o: 'buffers.o', lse: 'buffers.lse' };
  const bindEntries = abi.bindings.map((b) => `{ binding: ${b.binding}, resource: { buffer: ${b.role === 'table' ? `tableBuffers[${key(b.name!)}]` : byRole[b.role]} } }`);
  return [
    `checkShape(shape, this.device.limits.maxComputeWorkgroupsPerDimension);`,
    ...uniformStatements(m, abi.uniform, D, `${m.spec} uniforms`),
    `const bindGroup = this.device.createBindGroup({ label: ${label}, layout: this.layout, entries: [\n  ${bindEntries.join(',\n  ')},\n] });`,
    `const workgroups = [Math.ceil(shape.Nq / ${abi.dispatch.bm}), shape.Hq, shape.B] as const;`,
    'const pipeline = this.pipeline;',
    'return {',
    '  workgroups,',
    '  encode(encoder: GPUCommandEncoder): void {',
    '    const pass = encoder.beginComputePass();',
    '    pass.setPipeline(pipeline);',
    '    pass.setBindGroup(0, bindGroup);',
    '    pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);',
    '    pass.end();',
    '  },',
    '  destroy(): void { uniforms.destroy(); },',
    '};',
  ];
}

/** The params (defaults filled in) and sizes of a call into a new uniform buffer `uniforms`, at the ABI's offsets. */
export function uniformStatements(m: KernelManifest, uniform: WgslAbi['uniform'], D: number, label: string): string[] {
  const writes = uniform.fields.map((f) => {
    const source = f.source;
    const value = 'size' in source ? (source.size === 'D' ? `${D}` : `shape.${source.size}`) : `values[${m.params.findIndex((p) => p.name === source.param)}]`;
    return `view.set${f.type === 'i32' ? 'Int32' : 'Float32'}(${f.offset}, ${value}, true);`;
  });
  return [
    ...(m.params.length
      ? [`const values = [${m.params.map((pi) => `paramOr(params, ${key(pi.name)}, ${numberText(pi.default)}, ${pi.type === 'i32'})`).join(', ')}];`]
      : ['void params;']),
    `const uniforms = this.device.createBuffer({ label: ${key(label)}, size: ${uniform.size}, usage: USAGE.UNIFORM | USAGE.COPY_DST });`,
    `const view = new DataView(new ArrayBuffer(${uniform.size}));`,
    ...writes,
    'this.device.queue.writeBuffer(uniforms, 0, view.buffer);',
  ];
}

export function runStatements(c: ModuleContext): string[] {
  const { m, tables, D, half, bytesPerElem, cls, tableBuffersType } = c;
  return [
    'checkShape(shape, this.device.limits.maxComputeWorkgroupsPerDimension);',
    `const sizes = ${cls}.byteSizes(shape);`,
    '// Typed arrays are checked too: a plain array would reach writeBuffer and fail there, unexplained.',
    `for (const [name, x] of [['Q', inputs.q], ['K', inputs.k], ['V', inputs.v]] as const) if (!(x instanceof Float32Array)) throw new TypeError(\`attention ${m.spec}: \${name} must be a Float32Array\`);`,
    ...tables.map((t) => `if (!(tables[${key(t.name!)}] instanceof ${t.elem === 'i32' ? 'Int32Array' : 'Float32Array'})) throw new TypeError(\`attention ${m.spec}: table ${t.name} must be a${t.elem === 'i32' ? 'n Int32Array' : ' Float32Array'}\`);`),
    `if (inputs.q.length !== sizes.q / ${bytesPerElem}) throw new RangeError(\`attention ${m.spec}: Q must hold B*Hq*Nq*${D} = \${sizes.q / ${bytesPerElem}} values, got \${inputs.q.length}\`);`,
    `if (inputs.k.length !== sizes.k / ${bytesPerElem} || inputs.v.length !== sizes.k / ${bytesPerElem}) throw new RangeError(\`attention ${m.spec}: K and V must hold B*Hkv*Nk*${D} = \${sizes.k / ${bytesPerElem}} values each\`);`,
    ...tables.map((t) => `if (tables[${key(t.name!)}].length !== shape.${AXIS_SIZE[t.axis!]}) throw new RangeError(\`attention ${m.spec}: table ${t.name} is ${t.elem}[${t.axis}], so it needs \${shape.${AXIS_SIZE[t.axis!]}} values, got \${tables[${key(t.name!)}].length}\`);`),
    'const d = this.device;',
    'const created: GPUBuffer[] = [];',
    'let call: BoundCall | undefined;',
    'const buffer = (label: string, bytes: number, usage: number): GPUBuffer => {',
    '  const b = d.createBuffer({ label, size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });',
    '  created.push(b);',
    '  return b;',
    '};',
    'const upload = (label: string, data: ArrayBufferView): GPUBuffer => {',
    '  const b = buffer(label, data.byteLength, USAGE.STORAGE | USAGE.COPY_DST);',
    '  d.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);',
    '  return b;',
    '};',
    'try {',
    `  const buffers: AttentionBuffers = {`,
    `    q: upload('Q', ${half ? 'toHalves(inputs.q)' : 'inputs.q'}),`,
    `    k: upload('K', ${half ? 'toHalves(inputs.k)' : 'inputs.k'}),`,
    `    v: upload('V', ${half ? 'toHalves(inputs.v)' : 'inputs.v'}),`,
    '    o: buffer(\'O\', sizes.o, USAGE.STORAGE | USAGE.COPY_SRC),',
    '    lse: buffer(\'LSE\', sizes.lse, USAGE.STORAGE | USAGE.COPY_SRC),',
    '  };',
    ...(tables.length ? [`  const tableBuffers: ${tableBuffersType} = {`, ...tables.map((t) => `    ${key(t.name!)}: upload(${key(`table ${t.name}`)}, tables[${key(t.name!)}]),`), '  };'] : []),
    `  call = this.bind(buffers, shape, params${tables.length ? ', tableBuffers' : ''});`,
    '  const oRead = buffer(\'O readback\', sizes.o, USAGE.MAP_READ | USAGE.COPY_DST);',
    '  const lseRead = buffer(\'LSE readback\', sizes.lse, USAGE.MAP_READ | USAGE.COPY_DST);',
    '  const encoder = d.createCommandEncoder();',
    '  call.encode(encoder);',
    '  encoder.copyBufferToBuffer(buffers.o, 0, oRead, 0, oRead.size);',
    '  encoder.copyBufferToBuffer(buffers.lse, 0, lseRead, 0, lseRead.size);',
    '  d.queue.submit([encoder.finish()]);',
    '  await Promise.all([oRead.mapAsync(MAP_MODE_READ), lseRead.mapAsync(MAP_MODE_READ)]);',
    half
      ? '  const o = fromHalves(new Uint16Array(oRead.getMappedRange().slice(0, sizes.o)));'
      : '  const o = new Float32Array(oRead.getMappedRange().slice(0, sizes.o));',
    '  const lse = new Float32Array(lseRead.getMappedRange().slice(0, sizes.lse));',
    '  return { o, lse };',
    '} finally {',
    '  call?.destroy();',
    '  for (const b of created) b.destroy();',
    '}',
  ];
}

export function checkShapeStatements(c: ModuleContext): string[] {
  const { m, abi } = c;
  return [
    'for (const k of [\'B\', \'Hq\', \'Hkv\', \'Nq\', \'Nk\'] as const) {',
    `  if (!Number.isInteger(shape[k]) || shape[k] < 1 || shape[k] > 0x7fffffff) throw new RangeError(\`attention ${m.spec}: \${k} must be a positive 32-bit integer, got \${shape[k]}\`);`,
    '}',
    `if (shape.Hq % shape.Hkv !== 0) throw new RangeError(\`attention ${m.spec}: Hq (\${shape.Hq}) must be a multiple of Hkv (\${shape.Hkv})\`);`,
    `const grid = [Math.ceil(shape.Nq / ${abi.dispatch.bm}), shape.Hq, shape.B];`,
    `if (grid.some((g) => g > maxWorkgroups)) throw new RangeError(\`attention ${m.spec}: \${grid.join(' x ')} workgroups exceed this device's maxComputeWorkgroupsPerDimension (\${maxWorkgroups}); split the call\`);`,
  ];
}

export function paramOrStatements(spec: string): string[] {
  return [
    'const v: unknown = params !== undefined && Object.hasOwn(params, name) ? (params as Record<string, unknown>)[name] : undefined;',
    'if (v === undefined) return fallback;',
    `if (typeof v !== 'number' || (integer && !Number.isInteger(v))) throw new RangeError(\`attention ${spec}: param \${name} is \${integer ? 'an integer' : 'a number'}, got \${String(v)}\`);`,
    'return v;',
  ];
}

/** The f16 helpers of runtime/half.ts (f32 -> f16 bits, f16 bits -> f32), as source text. */
export async function halfHelpers(): Promise<string> {
  const { Project } = await import('ts-morph');
  const text = readFileSync(new URL('../../runtime/half.ts', import.meta.url), 'utf8');
  const file = new Project({ useInMemoryFileSystem: true }).createSourceFile('half.ts', text);
  const pieces = [
    file.getVariableStatementOrThrow('f32').getText(),
    file.getVariableStatementOrThrow('u32').getText(),
    file.getFunctionOrThrow('bitsOf').getText(),
    file.getFunctionOrThrow('f32ToF16Bits').getText().replace(/^export /, ''),
    file.getFunctionOrThrow('f16BitsToF32').getText().replace(/^export /, ''),
  ];
  return `// f16 conversions (round to nearest even), copied from attnc's runtime/half.ts.\n${pieces.join('\n\n')}\n`;
}
